#!/usr/bin/env bash
# Replays every workload of the zoo (scripts/zoo.sh) with `prewarm replay
# --json` at each TTL and prints one markdown table row per run.
#
#   scripts/zoo-replay.sh                          # target/zoo/, TTL 60 and 300
#   scripts/zoo-replay.sh --ttl 30,60,300 DIR      # other TTLs, another zoo
#   scripts/zoo-replay.sh --data                   # also data/traces/*.csv.gz
#   scripts/zoo-replay.sh DIR -- --warm-rate 50 --strategies popular,time
#   scripts/zoo-replay.sh DIR -- --latency-ms 100
#
# Options: --ttl LIST (comma-separated seconds, default 60,300); --no-equal-cost; --data to
# also replay the traces under data/traces/ when that folder exists; DIR
# (default target/zoo/, generated with scripts/zoo.sh when it holds no
# workload); everything after `--` goes to `prewarm replay` unchanged. A
# trace's universe `<stem>.universe.csv` is passed with --universe when it
# exists beside it.
#
# Each run is replayed twice: at the given cost cap (default 1.25), and with
# the cap set to refresh-ahead's own cost on that run (--no-equal-cost skips
# the second; do not pass --max-cost-ratio after `--` then).
#
# Columns: workload, TTL (s), hit rates of the baseline (no warming) and of
# refresh-ahead at 0.8 of the TTL with its cost ratio, then for each warmed
# run its hit rate, cost ratio (API calls / baseline API calls) and the
# share of the misses refresh-ahead leaves that it removes, and the
# clairvoyant bound with the share of refresh-ahead's misses it removes (the
# most any warmer can at this budget). A summary gives the median and worst
# of those shares.
# Needs python3 (standard library only) to read the JSON.
#
# Environment: PREWARM (the binary; built with `cargo build --release -p
# prewarm-cli` if absent).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}
TTLS=60,300
DATA=no
EQUAL=yes
DIR=$ROOT/target/zoo
EXTRA=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --ttl) TTLS=$2; shift 2 ;;
        --data) DATA=yes; shift ;;
        --no-equal-cost) EQUAL=no; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
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

# Prints one row from the two reports of a run (default cap, then the cap
# set to refresh-ahead's cost), and keeps it for the summary.
ROW=$(cat <<'PY'

import json, sys
name, ttl, first, second, keep = sys.argv[1:6]
a = json.load(open(first))
b = json.load(open(second)) if second != "-" else None
ra = a["refresh_ahead"]
def cells(r):
    w = r["warmed"]
    return (f"{100 * w['hit_rate']:.2f} % | {w['cost_ratio']:.3f} "
            f"| {100 * r['refresh_ahead']['misses_removed_by_warming']:.1f} %")
none = "- | - | -"
ra_miss = 1 - ra["hit_rate"]
bound_removes = 1 - (1 - a["bound"]["hit_rate"]) / ra_miss if ra_miss > 0 else 0.0
row = (f"| {name} | {ttl} | {100 * a['baseline']['hit_rate']:.2f} % "
       f"| {100 * ra['hit_rate']:.2f} % | {ra['cost_ratio']:.3f} | {cells(a)} "
       f"| {cells(b) if b else none} | {100 * a['bound']['hit_rate']:.2f} % "
       f"| {100 * bound_removes:.1f} % |")
print(row, flush=True)
with open(keep, "a") as f:
    f.write(json.dumps({
        "at_cap": a["refresh_ahead"]["misses_removed_by_warming"],
        "at_ra_cost": b["refresh_ahead"]["misses_removed_by_warming"] if b else None,
        "bound": bound_removes,
        "name": name, "ttl": ttl,
        "cost": [a["warmed"]["cost_ratio"], b["warmed"]["cost_ratio"] if b else None],
    }) + "\n")
PY
)
SUMMARY=$(cat <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for key, what in (("at_cap", "at the cap"), ("at_ra_cost", "at refresh-ahead's cost"),
                  ("bound", "by the bound (the most possible)")):
    xs = [r[key] for r in rows if r[key] is not None]
    if xs:
        worst = min(rows, key=lambda r: r[key] if r[key] is not None else 9)
        print(f"misses refresh-ahead leaves, removed {what}: median {100 * statistics.median(xs):.1f} %, "
              f"worst {100 * min(xs):.1f} % ({worst['name']} TTL {worst['ttl']}; {len(xs)} runs)")
costs = [c for r in rows for c in r["cost"] if c is not None]
print(f"highest cost ratio: {max(costs):.3f}")
PY
)

echo "| workload | TTL | baseline | refresh-ahead | its cost | warmed | cost | removes of RA misses | warmed at RA cost | cost | removes of RA misses | bound | bound removes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a ttls <<<"$TTLS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for trace in "${traces[@]}"; do
    name=$(basename "$trace" .csv.gz)
    universe=("--universe" "${trace%.csv.gz}.universe.csv")
    [[ -f ${universe[1]} ]] || universe=()
    for ttl in "${ttls[@]}"; do
        "$PREWARM" replay --trace "$trace" --ttl "$ttl" --json "${universe[@]}" "${EXTRA[@]}" >"$work/a.json"
        second=-
        if [[ $EQUAL == yes ]]; then
            cap=$(python3 -c 'import json,sys; print(max(1.0, json.load(open(sys.argv[1]))["refresh_ahead"]["cost_ratio"]))' "$work/a.json")
            "$PREWARM" replay --trace "$trace" --ttl "$ttl" --json "${universe[@]}" "${EXTRA[@]}" \
                --max-cost-ratio "$cap" >"$work/b.json"
            second=$work/b.json
        fi
        python3 -c "$ROW" "$name" "$ttl" "$work/a.json" "$second" "$work/rows.jsonl"
    done
done
echo
python3 -c "$SUMMARY" "$work/rows.jsonl"
