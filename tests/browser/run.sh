#!/usr/bin/env bash
# Run the browser test: install what a fresh machine lacks (Debian's
# Chromium, the npm packages), then `node --test` against the server binary.
#
#   tests/browser/run.sh                      # uses target/debug/miochat
#   MIOCHAT_BIN=target/release/miochat tests/browser/run.sh
#
# It never skips: anything missing that it cannot install is an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"
bin="${MIOCHAT_BIN:-target/debug/miochat}"
case "$bin" in /*) ;; *) bin="$top/$bin" ;; esac

die() { echo "tests/browser/run.sh: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is missing (Node.js 20 or later is needed)"
command -v npm >/dev/null || die "npm is missing"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: 20 or later is needed"

if [ ! -x "$chromium" ]; then
  if [ "$chromium" != /usr/bin/chromium ]; then
    die "CHROMIUM=$chromium is not an executable"
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "$chromium is missing and this is not root: run 'apt-get install chromium' as root"
  fi
  command -v apt-get >/dev/null || die "$chromium is missing and there is no apt-get to install it"
  echo "tests/browser/run.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q chromium || die "apt-get install chromium failed"
  [ -x "$chromium" ] || die "chromium installed, but $chromium is still missing"
fi

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/ws" ]; then
  echo "tests/browser/run.sh: installing npm packages" >&2
  if [ -f "$here/package-lock.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund) || die "npm ci failed"
  else
    (cd "$here" && npm install --no-audit --no-fund) || die "npm install failed"
  fi
fi

[ -x "$bin" ] || die "server binary $bin is missing: run 'cargo build' first (or set MIOCHAT_BIN)"

cd "$top"
export MIOCHAT_BIN="$bin" CHROMIUM="$chromium"
exec node --test "$here/browser.test.js"
