#!/usr/bin/env bash
# Builds the fuzz targets and runs each one for SECONDS (default 60), one at a
# time on one core: `bash fuzz/run.sh 600`, or `bash fuzz/run.sh 600 decoder`
# for one target. The top-level `make fuzz` calls it.
#
# Corpora grow in fuzz/corpus/TARGET (not in git), starting from the
# hand-made inputs in fuzz/seeds/TARGET. A failing input is written to
# fuzz/artifacts/TARGET/ and the script stops with an error: copy that file
# into fuzz/regressions/TARGET/ so `cargo test --test properties` replays it
# for ever, then fix the parser. Logs go to fuzz/logs/.
#
# cargo-fuzz needs nightly-only rustc flags (sanitizers); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them, so no second toolchain is needed.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS [TARGET...]]" >&2; exit 2 ;;
esac
shift $(($# > 0 ? 1 : 0))
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(handshake decoder requests resp)
# Longest inputs worth trying: a head is refused past 8 KiB; a few frames
# with their read sizes fit easily in 4 KiB; a few pipelined requests with
# bodies (the fuzzed limit is 4 KiB) in 12 KiB; RESP's limits are small in
# the check (fuzz/checks.rs RESP_LIMITS), so 1 KiB reaches all of them.
declare -A max_len=([handshake]=9000 [decoder]=4096 [requests]=12000 [resp]=1024)
for target in "${targets[@]}"; do
    [ -n "${max_len[$target]:-}" ] || { echo "fuzz: no target '$target' (handshake, decoder, requests, resp)" >&2; exit 2; }
done

cargo fuzz build
mkdir -p logs
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
    echo "fuzz: $target for ${seconds}s (log: fuzz/$log)"
    # No -jobs/-workers: one process, so the run takes one core of two.
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" \
        -max_len="${max_len[$target]}" \
        -dict="dicts/$target.dict" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' "$log" || true
    grep -E '#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 || true
done
echo "fuzz: every target ran ${seconds}s without a failure"
