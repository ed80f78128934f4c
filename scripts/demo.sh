#!/usr/bin/env bash
# Warmer on vs off: the same replayed market workload against two fresh
# daemons (built-in simulated upstream), results side by side.
#
#   scripts/demo.sh                 # SPEED=10: 30 trace minutes from the open in 3 real minutes per run
#   SPEED=1 scripts/demo.sh         # real time: 3 trace minutes, exactly the daemon's own pace
#   SCALE=no SPEED=60 DURATION_S=30 scripts/demo.sh   # the same 30 trace minutes, TTL and budget not scaled
#
# The daemon runs on the real clock, so at SPEED=N its TTL and warming
# budget are scaled to keep their ratio to the trace: ttl_s = TTL_S/N and a
# warming rate of RATE*N per minute (its learners' half-lives are not
# scaled; SCALE=no keeps TTL_S and RATE as they are, to see what an
# unscaled fast replay does). Each run starts cold (an empty state dir) at the trace's first
# open, with WARMING_OUTSIDE_SESSIONS=run: the real market's hours have
# nothing to do with the replayed ones.
#
# Environment: SPEED (10), SCALE (yes), DURATION_S (180, real seconds per run),
# TTL_S (60), RATE (100, warming fetches per trace minute), DAYS (2),
# SEED (3), PORT (18080; the admin listener takes PORT+1), PREWARM (the
# binary; built with `cargo build --release -p prewarm-cli` if absent).
set -euo pipefail

SPEED=${SPEED:-10}
SCALE=${SCALE:-yes}
DURATION_S=${DURATION_S:-180}
TTL_S=${TTL_S:-60}
RATE=${RATE:-100}
DAYS=${DAYS:-2}
SEED=${SEED:-3}
PORT=${PORT:-18080}
ADMIN_PORT=$((PORT + 1))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}

if [[ ! -x $PREWARM ]]; then
    (cd "$ROOT" && cargo build --release -p prewarm-cli)
fi
for tool in curl awk; do
    command -v "$tool" >/dev/null || { echo "demo.sh needs $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-demo.XXXXXX")
SERVE_PID=
cleanup() {
    if [[ -n $SERVE_PID ]]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

scale=$SPEED
[[ $SCALE == no ]] && scale=1
ttl=$(awk -v t="$TTL_S" -v s="$scale" 'BEGIN { printf "%.6g", t / s }')
rate=$(awk -v r="$RATE" -v s="$scale" 'BEGIN { printf "%.6g", r * s }')
trace_ttl=$(awk -v t="$ttl" -v s="$SPEED" 'BEGIN { printf "%.6g", t * s }')
trace_rate=$(awk -v r="$rate" -v s="$SPEED" 'BEGIN { printf "%.6g", r / s }')
printf '[datasets.quote]\nttl_s = %s\n' "$ttl" >"$WORK/prewarm.toml"

echo "workload: gen-trace --days $DAYS --seed $SEED, replayed from the first open at ${SPEED}x for ${DURATION_S} s per run"
echo "daemon: ttl_s $ttl, warming rate $rate/min (a TTL of $trace_ttl s and $trace_rate/min in trace time); work dir $WORK"
"$PREWARM" gen-trace --days "$DAYS" --seed "$SEED" --out "$WORK/gen.csv.gz" >/dev/null

# run NAME WARMING_ENABLED: one fresh daemon, one load; output in $WORK/NAME.*
run() {
    local name=$1 enabled=$2
    PREWARM_CONFIG="$WORK/prewarm.toml" WARMING_ENABLED=$enabled WARMING_RATE_LIMIT=$rate \
        WARMING_OUTSIDE_SESSIONS=run \
        "$PREWARM" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
        --state-dir "$WORK/state-$name" >"$WORK/$name.serve.log" 2>&1 &
    SERVE_PID=$!
    local ready=
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; then
            ready=1
            break
        fi
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        echo "serve ($name) did not start; its log:" >&2
        cat "$WORK/$name.serve.log" >&2
        exit 1
    fi
    echo "--- warming $name"
    "$PREWARM" load --trace "$WORK/gen.csv.gz" --from-open --speed "$SPEED" \
        --max-duration-s "$DURATION_S" --target "http://127.0.0.1:$PORT" \
        --admin "http://127.0.0.1:$ADMIN_PORT" | tee "$WORK/$name.load.log"
    kill "$SERVE_PID"
    wait "$SERVE_PID" || true
    SERVE_PID=
}

run on true
run off false

# field NAME AWK_PROGRAM: a figure from a load log's summary lines.
field() {
    awk "$2" "$WORK/$1.load.log"
}
hit='/^observed hit rate/ { print $4 }'
calls='/^daemon during the run/ { for (i = 1; i <= NF; i++) if ($i == "calls") print $(i + 1) }'
demand='/^daemon during the run/ { for (i = 1; i <= NF; i++) if ($i == "demand") print $(i - 1) }'
warming='/^daemon during the run/ { for (i = 1; i <= NF; i++) if ($i == "warming") print $(i - 1) }'
requests='/^observed hit rate/ { print $6 }'

echo
printf '%-28s %14s %14s\n' "" "warming on" "warming off"
printf '%-28s %14s %14s\n' "requests answered" "$(field on "$requests")" "$(field off "$requests")"
printf '%-28s %14s %14s\n' "hit rate (X-Cache)" "$(field on "$hit")" "$(field off "$hit")"
printf '%-28s %14s %14s\n' "upstream calls" "$(field on "$calls")" "$(field off "$calls")"
printf '%-28s %14s %14s\n' "  demand" "$(field on "$demand")" "$(field off "$demand")"
printf '%-28s %14s %14s\n' "  warming" "$(field on "$warming")" "$(field off "$warming")"
