#!/bin/sh
# `make debug`: build the debug binary and start it under rust-gdb with the
# breakpoints of notes/08-debugger.md. Type `run` at the (gdb) prompt, then
# open two browser tabs or run `python3 notes/two_clients.py --port 8080`.
#
#   ADDR=127.0.0.1:9000 sh notes/debug.sh      another address
#   sh notes/debug.sh --heartbeat-ms 2000      extra flags go to miochat
#
# The session runs with a one-minute heartbeat, not the default 30 s: the
# clients stay quiet while you read steps 1 to 4. The timer stop is off
# until step 5 (breakpoints.gdb), so it cannot come first, however long you
# stay at a stop. A --heartbeat-ms of yours comes later and wins.
set -eu
cd "$(dirname "$0")/.."
ADDR="${ADDR:-127.0.0.1:8080}"
if command -v rust-gdb >/dev/null 2>&1; then
    GDB=rust-gdb        # gdb plus the Rust pretty-printers (Vec, HashMap, String)
elif command -v gdb >/dev/null 2>&1; then
    GDB=gdb
else
    echo "debug: gdb is not installed (Debian: apt-get install gdb)" >&2
    exit 1
fi
cargo build
exec "$GDB" -q -x notes/breakpoints.gdb --args target/debug/miochat --addr "$ADDR" \
    --heartbeat-ms 60000 "$@"
