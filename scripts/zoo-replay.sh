#!/usr/bin/env bash
# Replays every workload of the zoo (scripts/zoo.sh) with `prewarm replay
# --json` at each TTL and prints one markdown table row per run.
#
#   scripts/zoo-replay.sh                          # target/zoo/, TTL 60 and 300
#   scripts/zoo-replay.sh --ttl 30,60,300 DIR      # other TTLs, another zoo
#   scripts/zoo-replay.sh --data                   # also data/traces/*.csv.gz
#   scripts/zoo-replay.sh DIR -- --warm-rate 50 --strategies popular,time
#
# Options: --ttl LIST (comma-separated seconds, default 60,300); --data to
# also replay the traces under data/traces/ when that folder exists; DIR
# (default target/zoo/, generated with scripts/zoo.sh when it holds no
# workload); everything after `--` goes to `prewarm replay` unchanged. A
# trace's universe `<stem>.universe.csv` is passed with --universe when it
# exists beside it.
#
# Columns: workload, TTL (s), hit rates of the baseline (no warming), the
# warmed run and the clairvoyant bound, the warmed run's cost ratio (API
# calls / baseline API calls) and miss reduction (share of baseline misses
# removed). Needs python3 (standard library only) to read the JSON.
#
# Environment: PREWARM (the binary; built with `cargo build --release -p
# prewarm-cli` if absent).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}
TTLS=60,300
DATA=no
DIR=$ROOT/target/zoo
EXTRA=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --ttl) TTLS=$2; shift 2 ;;
        --data) DATA=yes; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        -*) echo "zoo-replay.sh: unknown option $1" >&2; exit 2 ;;
        *) DIR=$1; shift ;;
    esac
done
command -v python3 >/dev/null || { echo "zoo-replay.sh needs python3" >&2; exit 1; }
if [[ ! -x $PREWARM ]]; then
    (cd "$ROOT" && cargo build --release -p prewarm-cli)
fi

shopt -s nullglob
traces=("$DIR"/*.csv.gz)
if [[ ${#traces[@]} -eq 0 ]]; then
    PREWARM=$PREWARM "$ROOT/scripts/zoo.sh" "$DIR"
    traces=("$DIR"/*.csv.gz)
fi
if [[ $DATA == yes && -d $ROOT/data/traces ]]; then
    traces+=("$ROOT"/data/traces/*.csv.gz)
fi

# Reads one `prewarm replay --json` report on stdin, prints its row.
ROW='
import json, sys
name, ttl = sys.argv[1], sys.argv[2]
r = json.load(sys.stdin)
base, warm, bound = r["baseline"]["hit_rate"], r["warmed"]["hit_rate"], r["bound"]["hit_rate"]
cost, reduction = r["warmed"]["cost_ratio"], r["warmed"]["miss_reduction"]
print(f"| {name} | {ttl} | {100 * base:.2f} % | {100 * warm:.2f} % | {100 * bound:.2f} % "
      f"| {cost:.3f} | {reduction:.4f} |", flush=True)
'

echo "| workload | TTL | baseline | warmed | bound | cost ratio | miss reduction |"
echo "|---|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a ttls <<<"$TTLS"
for trace in "${traces[@]}"; do
    name=$(basename "$trace" .csv.gz)
    universe=("--universe" "${trace%.csv.gz}.universe.csv")
    [[ -f ${universe[1]} ]] || universe=()
    for ttl in "${ttls[@]}"; do
        "$PREWARM" replay --trace "$trace" --ttl "$ttl" --json "${universe[@]}" "${EXTRA[@]}" \
            | python3 -c "$ROW" "$name" "$ttl"
    done
done
