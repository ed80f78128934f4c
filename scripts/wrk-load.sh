#!/usr/bin/env bash
# Load run with wrk: `prewarm serve` in front of `prewarm upstream-sim`
# answering 500 to a share of its calls, random reads over a key space,
# several runs back to back; per run the throughput, latency, 5xx answers
# (by status and error code) and the daemon's resident memory.
#
#   scripts/wrk-load.sh                        # 3 runs of 60 s, 64 connections, 5000 keys, error rate 0.2
#   DURATION_S=30 RUNS=3 scripts/wrk-load.sh   # shorter runs
#
# Steps: start upstream-sim (--error-rate ERROR_RATE --latency-ms
# LATENCY_MS) and serve (dataset `quote` pointed at it, an empty temp state
# dir, memory store) on free loopback ports; wait for /readyz; warm up by
# sweeping every key (WARMUP_S seconds; each key is read at least once and
# again each sweep, so every key has a cached or stale entry afterwards);
# then RUNS wrk runs reading random keys. serve's RSS (VmRSS) is sampled
# after the warm-up and after each run. Every key has an entry after the
# warm-up, and entries are answered STALE for ttl_s + stale_grace_s, so
# every 5xx during the runs is on a key the cache could have answered.
#
# Environment: DURATION_S (60, per run), RUNS (3), CONNECTIONS (64),
# THREADS (2), KEYS (5000), ERROR_RATE (0.2), LATENCY_MS (20), WARMUP_S
# (30), PREWARM (the binary; default target/release/prewarm, built with
# `cargo build --release -p prewarm-cli` if absent). Needs wrk and curl.
# Logs and wrk outputs stay in the printed work dir.
set -euo pipefail

DURATION_S=${DURATION_S:-60}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
KEYS=${KEYS:-5000}
ERROR_RATE=${ERROR_RATE:-0.2}
LATENCY_MS=${LATENCY_MS:-20}
WARMUP_S=${WARMUP_S:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}
LUA=$ROOT/scripts/wrk-keys.lua

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "wrk-load.sh needs $tool (Debian: apt-get install $tool)" >&2; exit 1; }
done
if [[ ! -x $PREWARM ]]; then
    (cd "$ROOT" && cargo build --release -p prewarm-cli)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-wrk.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on (a random pick, checked by connecting).
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free loopback port found" >&2
    exit 1
}

# wait_for URL PID NAME: polls URL until it answers 2xx, for up to 20 s.
wait_for() {
    local url=$1 pid=$2 name=$3
    for _ in $(seq 200); do
        curl -sf "$url" >/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "$name exited; its log:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "$name not ready at $url after 20 s; its log: $WORK/$name.log" >&2
    exit 1
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

SIM_PORT=$(free_port)
"$PREWARM" upstream-sim --listen "127.0.0.1:$SIM_PORT" --error-rate "$ERROR_RATE" \
    --latency-ms "$LATENCY_MS" >"$WORK/upstream-sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
# The sim answers 500 to a share of calls, so readiness is "it answers at all".
for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:$SIM_PORT/v1/quote/K0000" && break
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$WORK/upstream-sim.log" >&2; exit 1; }
    sleep 0.1
done

PORT=$(free_port)
ADMIN_PORT=$(free_port)
cat >"$WORK/prewarm.toml" <<EOF
[datasets.quote]
url = "http://127.0.0.1:$SIM_PORT/v1/quote/{key}"
EOF
PREWARM_CONFIG="$WORK/prewarm.toml" "$PREWARM" serve --listen "127.0.0.1:$PORT" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --state-dir "$WORK/state" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for "http://127.0.0.1:$ADMIN_PORT/readyz" "$SERVE_PID" serve

URL=http://127.0.0.1:$PORT
echo "work dir $WORK; upstream-sim :$SIM_PORT (error rate $ERROR_RATE, latency ${LATENCY_MS} ms), serve :$PORT (admin :$ADMIN_PORT), pid $SERVE_PID"
echo "load: wrk -t$THREADS -c$CONNECTIONS over $KEYS keys; warm-up ${WARMUP_S} s sweep, then $RUNS runs of ${DURATION_S} s"

# run_wrk NAME DURATION MODE: one wrk run; its output in $WORK/NAME.wrk.
run_wrk() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${2}s" --timeout 30s -s "$LUA" "$URL" \
        -- "$3" "$KEYS" "$THREADS" >"$WORK/$1.wrk" 2>&1
}

# report NAME: one table row from $WORK/NAME.wrk, plus the 5xx breakdown.
report() {
    local name=$1 file=$WORK/$1.wrk rss
    rss=$(rss_kib "$SERVE_PID")
    awk -v name="$name" -v rss="$rss" '
        /^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
        /^STATUS/ { if ($2 >= 500) n5xx += $3; statuses = statuses " " $2 ":" $3 }
        /^CODE/ { codes = codes " " $2 "/" $3 ":" $4 }
        /^CACHE/ { caches = caches " " $2 ":" $3 }
        END {
            printf "%-8s %9s %9s %9s %6d %9.1f %7d   statuses%s; x-cache%s\n",
                name, r["rps"], r["p50_ms"], r["p99_ms"], n5xx, rss / 1024, r["socket_errors"],
                statuses, caches
            if (codes != "") printf "         5xx by status/code:%s\n", codes
        }' "$file"
}

echo "serve RSS at start: $(( $(rss_kib "$SERVE_PID") / 1024 )) MiB"
printf '%-8s %9s %9s %9s %6s %9s %7s\n' run 'req/s' 'p50 ms' 'p99 ms' 5xx 'RSS MiB' sockerr
run_wrk warmup "$WARMUP_S" sweep
report warmup
for i in $(seq "$RUNS"); do
    run_wrk "run$i" "$DURATION_S" random
    report "run$i"
done
echo "upstream-sim calls: $(curl -s "http://127.0.0.1:$SIM_PORT/stats" || echo '?')"
