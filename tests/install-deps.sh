#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain, on a fresh machine:
# Node packages for the interop and browser tests and the Node peer (tests/peers.rs),
# Debian's chromium, and Debian's redis-server for the cluster tests
# (tests/cluster.rs).
# Fails loudly: a test that cannot run must not pass by skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v gdb >/dev/null || need_apt+=(gdb)
command -v prlimit >/dev/null || need_apt+=(util-linux)
# tools/wsraw.py, whose commands in the notes tests/notes_wsraw.rs runs.
command -v python3 >/dev/null || need_apt+=(python3)
# tests/cluster.rs runs the cluster against a real Redis.
command -v redis-server >/dev/null || need_apt+=(redis-server)
# curl, whose commands in the exercises' solutions tests/notes_wsraw.rs runs.
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need ${need_apt[*]} but not root; install them and rerun" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "install-deps: chromium is still missing" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "install-deps: redis-server is still missing" >&2; exit 1; }

for dir in tests/node tests/browser bench/peers/node-ws; do
  [ -f "$dir/package.json" ] || continue
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
