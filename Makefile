# miochat: `make run` serves on 127.0.0.1:8080; `make test` installs what the
# tests need on a fresh machine and runs every test.

ADDR ?= 127.0.0.1:8080
CARGO ?= cargo

SECONDS ?= 60

.PHONY: run run-cluster run-tokio run-node peer-tokio peer-node syscalls build debug bench compare compare-transports fuzz test test-rust test-node test-browser deps lint fmt fmt-check clean

run:
	$(CARGO) build --release
	@echo "miochat: open http://$(ADDR)/ in two browser tabs (Ctrl-C stops the server)"
	./target/release/miochat --addr $(ADDR)

# The same chat on a runtime (notes/06-vs-async.md): the benchmark peers in
# bench/peers/, on ADDR. Same routes as miochat: ws://ADDR/ and /chat (welcome,
# then every message to every other client), /echo, GET /status. No browser
# page: client/ speaks miochat.v1, which the peers do not; use tools/wsraw.py.
PEER_NOTE = "chat at ws://$(ADDR)/chat, echo at /echo, GET /status; try: python3 tools/wsraw.py $(ADDR) --path /chat head read:2 (Ctrl-C stops the server)"

run-tokio: peer-tokio
	@echo "tokio-tungstenite: "$(PEER_NOTE)
	./bench/target/release/tokio-ws --addr $(ADDR)

run-node: peer-node
	@echo "Node ws: "$(PEER_NOTE)
	node bench/peers/node-ws/server.js --addr $(ADDR)

# The peers, built or installed as bench/run.sh does.
peer-tokio:
	$(CARGO) build --release --manifest-path bench/peers/tokio-ws/Cargo.toml --target-dir bench/target

peer-node:
	@command -v node >/dev/null || { echo "node is not installed (Debian: apt-get install nodejs npm)"; exit 1; }
	@[ -f bench/peers/node-ws/node_modules/ws/package.json ] || (cd bench/peers/node-ws && npm ci --no-audit --no-fund --loglevel=error)

# System calls and wake-ups per broadcast message: miochat, tokio-tungstenite and
# Node ws under the same load, counted by strace (bench/syscalls.py; about two
# minutes plus builds). The table goes to target/syscalls/, which git ignores.
syscalls: peer-tokio peer-node
	$(CARGO) build --release
	@command -v strace >/dev/null || { echo "strace is not installed (Debian: apt-get install strace)"; exit 1; }
	python3 bench/syscalls.py
# One room on N processes (N=2 by default) sharing one port with
# --reuse-port, through a Redis started here without persistence
# (notes/10-redis.md). Ctrl-C stops Redis and every process.
N ?= 2
REDIS_PORT ?= 6390

run-cluster:
	$(CARGO) build --release
	@command -v redis-server >/dev/null || { echo "run-cluster: needs redis-server (make deps installs it)" >&2; exit 1; }
	@echo "miochat: Redis on 127.0.0.1:$(REDIS_PORT), $(N) processes on http://$(ADDR)/ (Ctrl-C stops them all)"
	@redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & pids=$$!; \
	for i in $$(seq $(N)); do \
		./target/release/miochat --addr $(ADDR) --reuse-port --redis redis://127.0.0.1:$(REDIS_PORT) & pids="$$pids $$!"; \
	done; \
	trap 'kill $$pids 2>/dev/null; wait; exit 0' INT TERM; \
	wait

build:
	$(CARGO) build

# The server under rust-gdb with the walkthrough's breakpoints (notes/08-debugger.md).
debug:
	ADDR=$(ADDR) sh notes/debug.sh

# Everything: unit tests, loopback scenarios against the real binary, the
# Node `ws` interop test, and the headless-Chromium browser test.
test: deps
	$(CARGO) build
	$(CARGO) test
	$(MAKE) test-node
	$(MAKE) test-browser

test-rust:
	$(CARGO) test

test-node:
	cd tests/node && node --test

test-browser:
	bash tests/browser/run.sh

# What the tests need beyond the Rust toolchain: Node packages (ws,
# playwright-core) and Debian's chromium. Idempotent: fast when present.
deps:
	bash tests/install-deps.sh

# Every scenario against miochat once (bench/run.sh; about a minute plus builds).
# Its table and chart go to target/bench/, which git ignores: a try-out records nothing.
bench:
	bash bench/run.sh bench

# miochat, Node ws and tokio-tungstenite, pinned to one core each, medians of
# three runs, ratios and an SVG chart in bench/results/ (installs the peers): the
# tracked record that notes/benchmarks.md quotes. Then the transports table: the
# same room over miochat's WebSocket, SSE and long-poll (bench/results/transports.md);
# then the cluster row: fan-out on 1, 2 and 4 processes through one Redis
# (bench/cluster.sh, results in bench/results/cluster.md).
compare:
	bash bench/run.sh compare
	bash bench/cluster.sh

# Only the transports part of compare (about 6 minutes plus builds).
compare-transports:
	bash bench/run.sh transports

# Each fuzz target for SECONDS (make fuzz SECONDS=600).
fuzz:
	bash fuzz/run.sh $(SECONDS)

lint:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clean:
	$(CARGO) clean
