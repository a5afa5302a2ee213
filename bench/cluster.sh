#!/usr/bin/env bash
# The cluster row of `make compare` (issue 16): the fanout scenario against one
# room served by 1, 2 and 4 miochat processes sharing one port (--reuse-port)
# through one redis-server, the same total clients each time, and against one
# process without Redis as the baseline. For each: deliveries per second, per
# CPU-second of all miochat processes together, the latency (p50/p99; the
# Redis hop is the difference from the baseline) and Redis's own CPU.
#
#   bash bench/cluster.sh            results in bench/results/cluster.jsonl and cluster.md
#
# Knobs (environment): PROCS ("1 2 4"), REPS (1), REDIS_PORT (6391), FANOUT_ARGS
# (as bench/run.sh's). Nothing is pinned: with 2 cores, N processes, Redis and the
# load generator share them, and the figures say what that machine did, no more.
# All load goes to 127.0.0.1; every run is bounded in time.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
GEN="$BENCH/target/release/miochat-bench"
MIOCHAT="$ROOT/target/release/miochat"
PROCS=${PROCS:-"1 2 4"}
REPS=${REPS:-1}
REDIS_PORT=${REDIS_PORT:-6391}
FANOUT_ARGS=${FANOUT_ARGS:-"--clients 1000 --senders 10 --messages 300 --bytes 64 --window 2"}
RESULTS="$BENCH/results/cluster.jsonl"
WORK=$(mktemp -d)
CLK_TCK=$(getconf CLK_TCK)
PIDS=()
REDIS_PID=""

log() { echo "[cluster.sh $(date +%H:%M:%S)] $*" >&2; }

stop_all() {
    for pid in "${PIDS[@]}" $REDIS_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}" $REDIS_PID; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    REDIS_PID=""
}
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true
command -v redis-server >/dev/null || { echo "cluster.sh: needs redis-server (make deps)" >&2; exit 1; }

log "building the load generator and miochat"
cargo build --release --quiet --manifest-path "$BENCH/Cargo.toml" --target-dir "$BENCH/target"
(cd "$ROOT" && cargo build --release --quiet)

# utime + stime of the given processes, in clock ticks (fields 14 and 15 of stat(5)).
ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        fields=$(sed 's/.*) //' "/proc/$pid/stat")
        total=$((total + $(echo "$fields" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

# Waits until FILE says TEXT (10 s at most).
wait_log() {
    for _ in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    log "$1 never said '$2':"
    tail -n 20 "$1" >&2
    return 1
}

start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --loglevel warning >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    log "redis-server did not start on $REDIS_PORT"
    return 1
}

# Starts N processes (N=0: one process without Redis); sets PORT and PIDS.
start_miochat() {
    local n=$1 i args=(--max-connections 20000) file
    [ "$n" -gt 0 ] && args+=(--reuse-port --redis "redis://127.0.0.1:$REDIS_PORT")
    file="$WORK/miochat-0.log"
    RUST_LOG=warn,miochat::server::redis=info "$MIOCHAT" --addr 127.0.0.1:0 "${args[@]}" >"$file" 2>&1 &
    PIDS=($!)
    wait_log "$file" "listening on"
    PORT=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$file" | head -n1 | grep -oE '[0-9]+$')
    for i in $(seq 1 $((n - 1))); do
        RUST_LOG=warn,miochat::server::redis=info "$MIOCHAT" --addr "127.0.0.1:$PORT" "${args[@]}" \
            >"$WORK/miochat-$i.log" 2>&1 &
        PIDS+=($!)
    done
    if [ "$n" -gt 0 ]; then
        for i in $(seq 0 $((n - 1))); do wait_log "$WORK/miochat-$i.log" "redis: ready"; done
    fi
}

# One run: N processes (0: no Redis); prints and appends one JSON line.
run_one() {
    local n=$1 label line before after redis_before=0 redis_after=0
    label=$([ "$n" -eq 0 ] && echo "1 process, no Redis" || echo "$n process(es) + Redis")
    [ "$n" -gt 0 ] && start_redis
    start_miochat "$n"
    before=$(ticks "${PIDS[@]}")
    [ -n "$REDIS_PID" ] && redis_before=$(ticks "$REDIS_PID")
    line=$(timeout --kill-after=10 300 "$GEN" fanout --url "ws://127.0.0.1:$PORT/" --no-status \
        --label "$label" --timeout 120 $FANOUT_ARGS) || log "the generator failed: $line"
    after=$(ticks "${PIDS[@]}")
    [ -n "$REDIS_PID" ] && redis_after=$(ticks "$REDIS_PID")
    stop_all
    [ -n "$line" ] || return 0
    python3 - "$line" "$n" "$((after - before))" "$((redis_after - redis_before))" "$CLK_TCK" <<'EOF' | tee -a "$RESULTS"
import json, sys
run = json.loads(sys.argv[1])
n, ticks, redis_ticks, tck = (int(a) for a in sys.argv[2:6])
cpu = ticks / tck
run.update(processes=n, miochat_cpu_s=round(cpu, 3), redis_cpu_s=round(redis_ticks / tck, 3),
           deliveries_per_miochat_cpu_s=round(run.get("delivered", 0) / cpu) if cpu else None)
print(json.dumps(run))
EOF
}

mkdir -p "$BENCH/results"
: >"$RESULTS"
for rep in $(seq 1 "$REPS"); do
    log "repetition $rep: baseline, then $PROCS process(es)"
    run_one 0
    for n in $PROCS; do run_one "$n"; done
done

python3 - "$RESULTS" >"$BENCH/results/cluster.md" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| setup | deliveries/s | per miochat CPU-s | miochat CPU-s | Redis CPU-s | p50 ms | p99 ms | lost | dup |")
print("|---|---|---|---|---|---|---|---|---|")
for n in sorted({r["processes"] for r in runs}):
    rs = [r for r in runs if r["processes"] == n]
    med = lambda k: statistics.median(r.get(k) or 0 for r in rs)
    print(f'| {rs[0]["server"]} | {med("deliveries_per_s"):,.0f} | {med("deliveries_per_miochat_cpu_s"):,.0f} '
          f'| {med("miochat_cpu_s"):.2f} | {med("redis_cpu_s"):.2f} | {med("lat_p50_us") / 1e3:.1f} '
          f'| {med("lat_p99_us") / 1e3:.1f} | {sum(r.get("lost", 0) for r in rs)} | {sum(r.get("duplicates", 0) for r in rs)} |')
EOF
cat "$BENCH/results/cluster.md"
