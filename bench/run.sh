#!/usr/bin/env bash
# The benchmark runner (project issue 7).
#
#   bash bench/run.sh bench     build miochat, run every scenario against it once, print a table;
#                               its files go to target/bench/ (untracked: a try-out records nothing)
#   bash bench/run.sh compare   install and build the peers too (npm ci, cargo), run miochat,
#                               node ws and tokio-tungstenite REPS times each, server pinned to
#                               CPU 0 and load generator to CPU 1; medians, ratios and an SVG
#                               chart go to bench/results/ (tracked: the record the notes quote);
#                               then the transports part below
#   bash bench/run.sh transports  only the transports part of compare: the same room over
#                               miochat's WebSocket (plain, miochat.v1), SSE and long-poll
#                               receivers (WebSocket senders), REPS times, pinned;
#                               bench/results/transports.{jsonl,md,svg}
#
# Knobs (environment): REPS (compare: 3, bench: 1), SERVERS, SCENARIOS, QUICK=1 (small sizes,
# for a smoke test), PIN=0 (no taskset), BUDGET_S (stop starting runs after this many seconds;
# compare: 2400), MIOCHAT_ARGS (extra miochat flags, e.g. "--send-buffer-bytes 32768"), and
# the per-scenario argument strings FANOUT_ARGS, FANOUT8_ARGS, RATE_ARGS, IDLE_ARGS,
# HANDSHAKE_ARGS, BIGMSG_ARGS, STORM2K_ARGS, STORM10K_ARGS, SLOW_ARGS, FLOOD_ARGS; for the
# transports part TRANSPORTS ("websocket websocket-v1 sse long-poll") and TRANSPORT_SCENARIOS
# ("fanout fanout-rate idle", run with the same argument strings). Every server and
# generator run is bounded in time; all load goes to 127.0.0.1; storm-*, slow-reader and
# flood stop at a memory ceiling (server RSS, machine TCP memory). RESULTS_DIR overrides
# where the files go.
set -euo pipefail

MODE=${1:-}
case "$MODE" in
    bench | compare | transports) ;;
    *)
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
# Only `compare` (and its transports part alone) writes into the repository: `bench` is for
# trying things, and a try-out must leave `git status` clean (target/ is ignored).
if [ "$MODE" != bench ]; then
    RESULTS_DIR=${RESULTS_DIR:-"$BENCH/results"}
else
    RESULTS_DIR=${RESULTS_DIR:-"$ROOT/target/bench"}
fi
GEN="$BENCH/target/release/miochat-bench"
TOKIO_WS="$BENCH/target/release/tokio-ws"
MIOCHAT="$ROOT/target/release/miochat"
WORK=$(mktemp -d)
mkdir -p "$RESULTS_DIR"

if [ "$MODE" = compare ]; then
    REPS=${REPS:-3}
    SERVERS=${SERVERS:-"miochat node-ws tokio-ws"}
    BUDGET_S=${BUDGET_S:-2400}
elif [ "$MODE" = transports ]; then
    REPS=${REPS:-3}
    SERVERS=miochat # the other transports are miochat's alone
    BUDGET_S=${BUDGET_S:-2400}
else
    REPS=${REPS:-1}
    SERVERS=${SERVERS:-"miochat"}
    BUDGET_S=${BUDGET_S:-900}
fi
SCENARIOS=${SCENARIOS:-"fanout fanout-w8 fanout-rate idle handshake bigmsg storm-2k storm-10k slow-reader flood"}
MIOCHAT_ARGS=${MIOCHAT_ARGS:-}
TRANSPORTS=${TRANSPORTS:-"websocket websocket-v1 sse long-poll"}
TRANSPORT_SCENARIOS=${TRANSPORT_SCENARIOS:-"fanout fanout-rate idle"}

if [ "${QUICK:-0}" = 1 ]; then
    FANOUT_ARGS=${FANOUT_ARGS:-"--clients 200 --senders 10 --messages 20 --bytes 64 --window 2"}
    FANOUT8_ARGS=${FANOUT8_ARGS:-"--clients 200 --senders 10 --messages 40 --bytes 64 --window 8"}
    RATE_ARGS=${RATE_ARGS:-"--clients 200 --senders 10 --rate 20000 --duration 2 --bytes 64"}
    IDLE_ARGS=${IDLE_ARGS:-"--conns 1000 --duration 2 --settle 1"}
    HANDSHAKE_ARGS=${HANDSHAKE_ARGS:-"--concurrency 32 --duration 2"}
    BIGMSG_ARGS=${BIGMSG_ARGS:-"--bytes 1048576 --messages 20 --window 2"}
    STORM2K_ARGS=${STORM2K_ARGS:-"--stuck 200 --mib 32"}
    STORM10K_ARGS=${STORM10K_ARGS:-"--stuck 1000 --mib 32"}
    SLOW_ARGS=${SLOW_ARGS:-"--duration 2 --drain-s 3"}
    FLOOD_ARGS=${FLOOD_ARGS:-"--clients 200 --readers 20 --duration 2 --drain-s 6"}
else
    FANOUT_ARGS=${FANOUT_ARGS:-"--clients 1000 --senders 10 --messages 300 --bytes 64 --window 2"}
    FANOUT8_ARGS=${FANOUT8_ARGS:-"--clients 1000 --senders 10 --messages 600 --bytes 64 --window 8"}
    RATE_ARGS=${RATE_ARGS:-"--clients 1000 --senders 10 --rate 20000 --duration 10 --bytes 64"}
    IDLE_ARGS=${IDLE_ARGS:-"--conns 10000 --duration 10 --settle 2"}
    HANDSHAKE_ARGS=${HANDSHAKE_ARGS:-"--concurrency 32 --duration 10"}
    BIGMSG_ARGS=${BIGMSG_ARGS:-"--bytes 1048576 --messages 500 --window 2"}
    STORM2K_ARGS=${STORM2K_ARGS:-"--stuck 2000 --mib 64"}
    STORM10K_ARGS=${STORM10K_ARGS:-"--stuck 10000 --mib 64"}
    SLOW_ARGS=${SLOW_ARGS:-"--senders 2 --bytes 1024 --duration 10 --read-bytes 65536 --drain-s 5"}
    FLOOD_ARGS=${FLOOD_ARGS:-"--clients 2000 --readers 100 --duration 10 --drain-s 10"}
fi

PIN_S=""
PIN_G=""
if [ "${PIN:-1}" = 1 ]; then
    if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        PIN_S="taskset -c 0"
        PIN_G="taskset -c 1"
    else
        echo "run.sh: fewer than 2 CPUs or no taskset: running unpinned" >&2
    fi
fi

log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }

SERVER_PID=""
PORT=""
LOG_FILE=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    # Graceful shutdown gets 5 s, then it is killed.
    for _ in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The file limit: idle holds 10000 connections, each server needs one descriptor per client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- install and build -------------------------------------------------------------------
need_server() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

log "building the load generator"
cargo build --release --quiet --manifest-path "$BENCH/Cargo.toml" --target-dir "$BENCH/target"

if need_server miochat || [ "$MODE" != bench ]; then
    log "building miochat (cargo build --release at the repository top)"
    (cd "$ROOT" && cargo build --release --quiet)
fi
if need_server tokio-ws || need_server tokio-ws-mt; then
    log "building the tokio-tungstenite peer"
    cargo build --release --quiet --manifest-path "$BENCH/peers/tokio-ws/Cargo.toml" --target-dir "$BENCH/target"
fi
if need_server node-ws; then
    command -v node >/dev/null || {
        echo "run.sh: node is not installed (Debian: apt-get install nodejs npm)" >&2
        exit 1
    }
    if [ ! -f "$BENCH/peers/node-ws/node_modules/ws/package.json" ] || [ "$MODE" = compare ]; then
        log "installing the node ws peer (npm ci)"
        (cd "$BENCH/peers/node-ws" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi

# ---- one server, one scenario ------------------------------------------------------------
start_server() { # NAME HEARTBEAT_MS
    local name=$1 hb=$2
    # A new file per run: a reused one could still show the previous server's port.
    LOG_FILE="$WORK/$name-$RUNS.log"
    local log_file=$LOG_FILE
    case "$name" in
        miochat)
            # RUST_LOG=warn: per-connection info lines would cost the server time.
            # shellcheck disable=SC2086 # MIOCHAT_ARGS is a word list on purpose
            RUST_LOG=warn $PIN_S "$MIOCHAT" --addr 127.0.0.1:0 --heartbeat-ms "$hb" \
                --max-connections 20000 --max-message-bytes 2097152 --max-buffered-bytes 4194304 \
                $MIOCHAT_ARGS >"$log_file" 2>&1 &
            ;;
        node-ws)
            $PIN_S node "$BENCH/peers/node-ws/server.js" --port 0 --heartbeat-ms "$hb" >"$log_file" 2>&1 &
            ;;
        tokio-ws)
            $PIN_S "$TOKIO_WS" --port 0 --threads 1 --heartbeat-ms "$hb" >"$log_file" 2>&1 &
            ;;
        tokio-ws-mt)
            $PIN_S "$TOKIO_WS" --port 0 --threads 2 --heartbeat-ms "$hb" >"$log_file" 2>&1 &
            ;;
        *)
            echo "run.sh: unknown server $name" >&2
            return 1
            ;;
    esac
    SERVER_PID=$!
    PORT=""
    # The port: from the "listening on 127.0.0.1:PORT" line every server prints, else from
    # the kernel's socket table.
    for _ in $(seq 1 100); do
        PORT=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$log_file" 2>/dev/null | head -n1 | grep -oE '[0-9]+$' || true)
        if [ -z "$PORT" ]; then
            PORT=$(ss -Htlnp 2>/dev/null | grep -F "pid=$SERVER_PID," | awk '{print $4}' | grep -oE '[0-9]+$' | head -n1 || true)
        fi
        [ -n "$PORT" ] && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "$name exited at start:"
            sed -n '1,20p' "$log_file" >&2
            SERVER_PID=""
            return 1
        fi
        sleep 0.1
    done
    log "$name did not start listening within 10 s"
    stop_server
    return 1
}

# The memory scenarios measure the machine's TCP memory: give the buffers of the
# previous run (closing sockets, orphans) up to 10 s to go below 256 MiB first.
settle_tcp() {
    local pages
    for _ in $(seq 1 100); do
        pages=$(awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat)
        [ "$((${pages:-0} * $(getconf PAGESIZE)))" -lt $((256 << 20)) ] && return 0
        sleep 0.1
    done
    log "the machine's TCP memory is still $((pages * $(getconf PAGESIZE) >> 20)) MiB; starting anyway"
}

FAILS=0
RUNS=0
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

run_one() { # SERVER SCENARIO [TRANSPORT: miochat's receivers on it, labelled with its name]
    local name=$1 sc=$2 transport=${3:-} hb=30000 args line rc=0 label=$1
    case "$sc" in
        fanout) args=$FANOUT_ARGS ;;
        fanout-w8) args=$FANOUT8_ARGS ;;
        fanout-rate) args=$RATE_ARGS ;;
        idle)
            args=$IDLE_ARGS
            hb=1000 # the idle window measures the heartbeat's cost
            ;;
        handshake) args=$HANDSHAKE_ARGS ;;
        bigmsg) args=$BIGMSG_ARGS ;;
        storm-2k) args=$STORM2K_ARGS ;;
        storm-10k) args=$STORM10K_ARGS ;;
        slow-reader) args=$SLOW_ARGS ;;
        flood) args=$FLOOD_ARGS ;;
        *)
            echo "run.sh: unknown scenario $sc" >&2
            exit 2
            ;;
    esac
    if [ -n "$transport" ]; then
        label=$transport
        args="$args --transport $transport"
    fi
    RUNS=$((RUNS + 1))
    case "$sc" in storm-* | slow-reader | flood) settle_tcp ;; esac
    if ! start_server "$name" "$hb"; then
        echo "{\"scenario\":\"$sc\",\"server\":\"$label\",\"ok\":false,\"error\":\"server did not start\"}" >>"$RESULTS"
        FAILS=$((FAILS + 1))
        return
    fi
    # shellcheck disable=SC2086 # the argument strings are word lists on purpose
    line=$(timeout --kill-after=10 300 $PIN_G "$GEN" "$sc" --url "ws://127.0.0.1:$PORT/" --pid "$SERVER_PID" \
        --label "$label" --timeout 120 $args) || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$name died during $sc; its last output:"
        tail -n 20 "$LOG_FILE" >&2
    fi
    stop_server
    if [ -z "$line" ]; then
        line="{\"scenario\":\"$sc\",\"server\":\"$label\",\"ok\":false,\"error\":\"generator exited $rc without a result\"}"
    fi
    echo "$line" >>"$RESULTS"
    echo "$line"
    if [ "$rc" -ne 0 ]; then
        FAILS=$((FAILS + 1))
    fi
}

# ---- the runs ----------------------------------------------------------------------------
# `transports` runs only the transports part (below); `bench` and `compare` run this first.
if [ "$MODE" != transports ]; then
    RESULTS="$RESULTS_DIR/$MODE.jsonl"
    : >"$RESULTS"
    log "mode $MODE: servers [$SERVERS], scenarios [$SCENARIOS], $REPS repetition(s)${PIN_S:+, server on CPU 0 and generator on CPU 1}"
    stopped_early=""
    for rep in $(seq 1 "$REPS"); do
        for sc in $SCENARIOS; do
            for name in $SERVERS; do
                if [ $(($(date +%s) - T_START)) -gt "$BUDGET_S" ]; then
                    stopped_early="stopped after ${BUDGET_S} s (BUDGET_S), in repetition $rep"
                    break 3
                fi
                log "repetition $rep/$REPS: $name $sc"
                run_one "$name" "$sc"
            done
        done
    done
    ELAPSED=$(($(date +%s) - T_START))

    # ---- the report --------------------------------------------------------------------------
    MD="$RESULTS_DIR/$MODE.md"
    SVG="$RESULTS_DIR/$MODE.svg"
    "$GEN" report --input "$RESULTS" --md "$WORK/table.md" --svg "$SVG" --baseline miochat \
        --title "miochat $MODE: medians of $REPS run(s), server pinned to one core"

    ws_version=$(node -p "require('$BENCH/peers/node-ws/node_modules/ws/package.json').version" 2>/dev/null || echo "?")
    tt_version=$(grep -A1 '^name = "tokio-tungstenite"' "$BENCH/peers/tokio-ws/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')
    cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    {
        echo "# miochat benchmarks: \`$MODE\`"
        echo
        echo "Run on $(date -u +%Y-%m-%d) at commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)'), in ${ELAPSED} s; ${RUNS} runs, ${FAILS} failed.${stopped_early:+ Note: $stopped_early.}"
        echo
        echo "- machine: $(nproc) × $cpu_model, Linux $(uname -r); load average (1/5/15 min) $LOAD_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: other work is not stopped)"
        echo "- pinning: ${PIN_S:-none} for the server, ${PIN_G:-none} for the load generator"
        servers_line="$(rustc --version)"
        need_server miochat && servers_line="$servers_line; miochat: release build, RUST_LOG=warn${MIOCHAT_ARGS:+, extra flags \`$MIOCHAT_ARGS\`}"
        need_server node-ws && servers_line="$servers_line; node-ws: ws $ws_version on Node $(node --version 2>/dev/null || echo '?')"
        need_server tokio-ws && servers_line="$servers_line; tokio-ws: tokio-tungstenite $tt_version, current_thread runtime"
        need_server tokio-ws-mt && servers_line="$servers_line; tokio-ws-mt: the same on a 2-worker multi_thread runtime"
        echo "- servers: $servers_line"
        echo "- fanout: \`$FANOUT_ARGS\`"
        echo "- fanout-w8: \`$FANOUT8_ARGS\`"
        echo "- fanout-rate: \`$RATE_ARGS\`"
        echo "- idle: \`$IDLE_ARGS\` (server heartbeat 1000 ms)"
        echo "- handshake: \`$HANDSHAKE_ARGS\`"
        echo "- bigmsg: \`$BIGMSG_ARGS\`"
        echo "- storm-2k: \`$STORM2K_ARGS\`; storm-10k: \`$STORM10K_ARGS\`"
        echo "- slow-reader: \`$SLOW_ARGS\`"
        echo "- flood: \`$FLOOD_ARGS\`"
        echo "- storm-*, slow-reader, flood: stopped at server RSS 3072 MiB or the machine's TCP memory at 90 % of tcp_mem low ($(awk '{ printf "%d", $1 * 0.9 * '"$(getconf PAGESIZE)"' / 1048576 }' /proc/sys/net/ipv4/tcp_mem 2>/dev/null || echo '?') MiB here, at most 3072) unless the argument strings say otherwise; miochat runs with its defaults for the shared log (\`--history-bytes\` 16 MiB, \`--history-messages\` 10000, \`--stall-ms\` 5000, \`--send-buffer-bytes\` 128 KiB); the peers have no such settings: they queue per connection without bound and never drop a reader"
        echo
        echo "A fresh server process for every run. \"per server CPU-s\" is work divided by the server's utime+stime"
        echo "(all threads) over the measured phase. See bench/README.md for the method."
        echo
        cat "$WORK/table.md"
    } >"$MD"
    cat "$MD"
    shown_dir=${RESULTS_DIR#"$ROOT"/}
    log "results: $shown_dir/$MODE.jsonl, $shown_dir/$MODE.md, $shown_dir/$MODE.svg"
fi

# ---- the transports part: the same room over WebSocket, SSE and long-poll ----------------
# miochat alone (the peers speak only WebSocket): TRANSPORT_SCENARIOS with the same argument
# strings, receivers on each of TRANSPORTS, WebSocket senders (--transport in the generator).
if [ "$MODE" != bench ]; then
    RESULTS="$RESULTS_DIR/transports.jsonl"
    : >"$RESULTS"
    T_START=$(date +%s)
    RUNS0=$RUNS
    FAILS0=$FAILS
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    log "transports: [$TRANSPORTS], scenarios [$TRANSPORT_SCENARIOS], $REPS repetition(s)"
    stopped_early=""
    for rep in $(seq 1 "$REPS"); do
        for sc in $TRANSPORT_SCENARIOS; do
            for t in $TRANSPORTS; do
                if [ $(($(date +%s) - T_START)) -gt "$BUDGET_S" ]; then
                    stopped_early="stopped after ${BUDGET_S} s (BUDGET_S), in repetition $rep"
                    break 3
                fi
                log "transports, repetition $rep/$REPS: miochat $sc over $t"
                run_one miochat "$sc" "$t"
            done
        done
    done
    ELAPSED=$(($(date +%s) - T_START))
    MD="$RESULTS_DIR/transports.md"
    SVG="$RESULTS_DIR/transports.svg"
    "$GEN" report --input "$RESULTS" --md "$WORK/transports-table.md" --svg "$SVG" \
        --baseline "${TRANSPORTS%% *}" \
        --title "miochat transports: medians of $REPS run(s), server pinned to one core"
    cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    {
        echo "# miochat benchmarks: transports"
        echo
        echo "Run on $(date -u +%Y-%m-%d) at commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)'), in ${ELAPSED} s; $((RUNS - RUNS0)) runs, $((FAILS - FAILS0)) failed.${stopped_early:+ Note: $stopped_early.}"
        echo
        echo "The same chat room on one miochat process, read over each of its three transports:"
        echo "\`websocket\` (plain frames on \`/\`: the text alone), \`websocket-v1\` (the same, offering"
        echo "\`miochat.v1\`: the JSON object SSE and long-poll readers get, in a frame), \`sse\`"
        echo "(\`GET /events\`) and \`long-poll\`"
        echo "(\`GET /poll\`, asked again at once with the answer's \`last_id\`, on the same kept-alive"
        echo "connection). The senders are WebSocket clients in every row (the point is the"
        echo "receive side): \`fanout\` and \`fanout-rate\` have 10 senders beside the receivers, each"
        echo "message must reach every receiver once, in order; what reaches the senders is read"
        echo "and not counted. \"receiver bytes\" are everything the receivers' sockets read (heads,"
        echo "SSE fields, frame headers) plus, for long-poll, the requests they write, per delivered"
        echo "message; TCP/IP headers are not counted, and the generator's requests carry only"
        echo "\`Host\` (a browser's carry a few hundred bytes more)."
        echo
        echo "- machine: $(nproc) × $cpu_model, Linux $(uname -r); load average (1/5/15 min) $LOAD_START at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: other work is not stopped)"
        echo "- pinning: ${PIN_S:-none} for the server, ${PIN_G:-none} for the load generator"
        echo "- server: miochat, release build, RUST_LOG=warn${MIOCHAT_ARGS:+, extra flags \`$MIOCHAT_ARGS\`}; $(rustc --version)"
        echo "- fanout: \`$FANOUT_ARGS\` (--clients is the receivers)"
        echo "- fanout-rate: \`$RATE_ARGS\`"
        echo "- idle: \`$IDLE_ARGS\` (server heartbeat 1000 ms: pings, or \`: keep-alive\` comments; polls are held)"
        echo
        echo "A fresh server process for every run. \"per server CPU-s\" is work divided by the server's utime+stime"
        echo "over the measured phase. Ratios are websocket ÷ the other. See bench/README.md for the method."
        echo
        cat "$WORK/transports-table.md"
    } >"$MD"
    cat "$MD"
    shown_dir=${RESULTS_DIR#"$ROOT"/}
    log "results: $shown_dir/transports.jsonl, $shown_dir/transports.md, $shown_dir/transports.svg"
fi
if [ "$FAILS" -gt 0 ]; then
    log "$FAILS of $RUNS runs FAILED (see the table)"
    exit 1
fi
