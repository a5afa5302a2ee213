# miochat: `make run` serves on 127.0.0.1:8080; `make test` installs what the
# tests need on a fresh machine and runs every test.

ADDR ?= 127.0.0.1:8080
CARGO ?= cargo

SECONDS ?= 60

.PHONY: run run-cluster build debug bench compare fuzz test test-rust test-node test-browser deps lint fmt fmt-check clean

run:
	$(CARGO) build --release
	@echo "miochat: open http://$(ADDR)/ in two browser tabs (Ctrl-C stops the server)"
	./target/release/miochat --addr $(ADDR)

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
bench:
	bash bench/run.sh bench

# miochat, Node ws and tokio-tungstenite, pinned to one core each, medians of
# three runs, ratios and an SVG chart in bench/results/ (installs the peers);
# then the cluster row: fan-out on 1, 2 and 4 processes through one Redis
# (bench/cluster.sh, results in bench/results/cluster.md).
compare:
	bash bench/run.sh compare
	bash bench/cluster.sh

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
