# miochat: `make run` serves on 127.0.0.1:8080; `make test` installs what the
# tests need on a fresh machine and runs every test.

ADDR ?= 127.0.0.1:8080
CARGO ?= cargo

.PHONY: run build debug test test-rust test-node test-browser deps lint fmt fmt-check clean

run:
	$(CARGO) build --release
	@echo "miochat: open http://$(ADDR)/ in two browser tabs (Ctrl-C stops the server)"
	./target/release/miochat --addr $(ADDR)

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

lint:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clean:
	$(CARGO) clean
