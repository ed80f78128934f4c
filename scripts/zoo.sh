#!/usr/bin/env bash
# The workload zoo: varied synthetic market workloads from `prewarm
# gen-trace`, each a few days long, so the warmer can be developed against
# more than one kind of traffic. docs/zoo.md says what each one represents.
#
#   scripts/zoo.sh                    # all workloads into target/zoo/
#   scripts/zoo.sh DIR                # into DIR
#   scripts/zoo.sh DIR NAME...        # only the named workloads
#
# Each workload is DIR/NAME.csv.gz with its universe DIR/NAME.universe.csv.
# Workloads marked "no client column" are `timestamp,key` only, as recorded
# market traffic without client ids looks. scripts/zoo-replay.sh replays
# them all.
#
# Environment: PREWARM (the binary; built with `cargo build --release -p
# prewarm-cli` if absent).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/target/zoo}
shift || true
PREWARM=${PREWARM:-$ROOT/target/release/prewarm}

if [[ ! -x $PREWARM ]]; then
    (cd "$ROOT" && cargo build --release -p prewarm-cli)
fi
mkdir -p "$DIR"

# name, then gen-trace flags. Each differs from the others along several
# knobs and has its own seed.
WORKLOADS=(
    # The default generator, short: 60 users, 4 scanners, Zipf 1.0, slow drift.
    "reference-2d --seed 101 --days 2"
    # A trading app refreshing watchlists by batch quote calls, fast and on time.
    "batched-fast-pollers --seed 102 --days 2 --start 2026-03-10 --users 16 --poll-mode batched
        --poll-period-min-s 10 --poll-period-max-s 60 --poll-jitter-ms 0 --scanners 2 --lookups-per-day 80000"
    # Slow pollers whose periods straddle both TTLs, with seconds of timer jitter.
    "slow-jittery-pollers --seed 103 --days 3 --start 2026-03-17 --users 150 --poll-period-min-s 90
        --poll-period-max-s 900 --poll-jitter-ms 20000 --scanners 3 --daily-drift 0.05 --lookups-per-day 100000"
    # No client column: a public quote portal, mostly anonymous, over a long flat tail.
    "anonymous-long-tail --seed 104 --days 2 --start 2026-03-24 --universe-size 20000 --zipf-exponent 0.7
        --anonymous-share 0.85 --users 8 --scanners 1 --no-client-column"
    # No client column: a steep head whose ranks rotate within days, over a weekend and the DST change.
    "drifting-head --seed 105 --days 5 --start 2026-03-05 --zipf-exponent 1.3 --daily-drift 0.6
        --anonymous-share 0.55 --users 20 --no-client-column"
    # No client column: earnings season, news bursts dominate.
    "news-storm --seed 106 --days 2 --start 2026-04-21 --universe-size 3000 --news-per-day 120
        --news-lookups-max 5000 --lookups-per-day 60000 --users 15 --scanners 2 --no-client-column"
    # A narrow product (a few hundred symbols), nearly everything hot, frozen ranks.
    "small-hot-universe --seed 107 --days 2 --start 2026-05-05 --universe-size 300 --zipf-exponent 1.2
        --daily-drift 0 --users 40 --lookups-per-day 120000 --news-per-day 10"
    # No client column: close to unpredictable, a near-uniform tail over many keys.
    "unpredictable-flat --seed 108 --days 2 --start 2026-06-09 --universe-size 8000 --zipf-exponent 0.3
        --daily-drift 0.3 --anonymous-share 0.95 --users 3 --scanners 0 --no-client-column"
    # Thanksgiving: a trading day, the holiday, the early close at 13:00 and a Saturday.
    "thanksgiving --seed 109 --days 4 --start 2026-11-25 --users 25 --poll-mode batched
        --poll-period-min-s 15 --poll-period-max-s 120 --news-per-day 60 --lookups-per-day 100000"
)

ONLY=" $* "
for spec in "${WORKLOADS[@]}"; do
    read -r -a words <<<"$(tr '\n' ' ' <<<"$spec")"
    name=${words[0]}
    if [[ $ONLY != "  " && $ONLY != *" $name "* ]]; then
        continue
    fi
    echo "$name: gen-trace ${words[*]:1}" >&2
    "$PREWARM" gen-trace "${words[@]:1}" --out "$DIR/$name.csv.gz"
done
