#!/usr/bin/env bash
# The README's dashboard screenshot: a fresh daemon (built-in simulated
# upstream) under a replayed market workload for DURATION_S real seconds,
# then headless chromium renders the dashboard to OUT.
#
#   scripts/dashboard-shot.sh                      # 300 s at SPEED=5, docs/dashboard.png
#   DURATION_S=60 OUT=/tmp/d.png scripts/dashboard-shot.sh
#
# Environment: DURATION_S (300), SPEED (5, trace seconds per real second;
# TTL and warming rate are scaled as in scripts/demo.sh), OUT
# (docs/dashboard.png), PORT (18090; admin PORT+1), PREWARM (the binary;
# target/release/prewarm, built if absent).
set -euo pipefail

DURATION_S=${DURATION_S:-300}
SPEED=${SPEED:-5}
PORT=${PORT:-18090}
ADMIN_PORT=$((PORT + 1))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/docs/dashboard.png}
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}
[[ -x $PREWARM ]] || (cd "$ROOT" && cargo build --release -p prewarm-cli)
for tool in curl chromium; do
    command -v "$tool" >/dev/null || { echo "dashboard-shot.sh needs $tool" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prewarm-shot.XXXXXX")
SERVE_PID=
cleanup() {
    [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

ttl=$(awk -v s="$SPEED" 'BEGIN { printf "%.6g", 60 / s }')
rate=$(awk -v s="$SPEED" 'BEGIN { printf "%.6g", 100 * s }')
printf '[datasets.quote]\nttl_s = %s\n' "$ttl" >"$WORK/prewarm.toml"
"$PREWARM" gen-trace --days 2 --seed 3 --out "$WORK/gen.csv.gz" >/dev/null
PREWARM_CONFIG="$WORK/prewarm.toml" WARMING_RATE_LIMIT=$rate WARMING_OUTSIDE_SESSIONS=run \
    "$PREWARM" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --state-dir "$WORK/state" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done
echo "dashboard-shot: ${DURATION_S} s of traffic at ${SPEED}x (ttl_s $ttl, warming $rate/min)"
"$PREWARM" load --trace "$WORK/gen.csv.gz" --from-open --speed "$SPEED" \
    --max-duration-s "$DURATION_S" --target "http://127.0.0.1:$PORT" \
    --admin "http://127.0.0.1:$ADMIN_PORT"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --virtual-time-budget=5000 --hide-scrollbars \
    --window-size=1280,900 --user-data-dir="$WORK/profile" \
    --screenshot="$OUT" "http://127.0.0.1:$ADMIN_PORT/" 2>/dev/null
echo "dashboard-shot: wrote $OUT"
