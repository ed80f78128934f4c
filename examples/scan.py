#!/usr/bin/env python3
"""A stock scanner's integration with prewarm, end to end.

The flow of an app that used to read quotes straight from its vendor:
scan 200 symbols through prewarm (`get_many`), report the symbols the scan
showed (`track_symbol_access`, with each one's sector), ask for the
popular symbols to be warmed (`warm_popular_symbols`), then print the
warming worker's status and the hit rate, before and after.

Run it (from the repository's top folder):

    cargo build --bin prewarm
    python3 -m venv .venv && .venv/bin/pip install -e clients/python
    # shell 1: the daemon, with the built-in simulated upstream (no --upstream)
    PREWARM_ADMIN_TOKEN=demo-admin PREWARM_ACCESS_TOKEN=demo-access \\
      WARMING_OUTSIDE_SESSIONS=run WARMING_RATE_LIMIT=1000 \\
      target/debug/prewarm serve --state-dir /tmp/prewarm-scan-state
    # shell 2: the scan
    PREWARM_ADMIN_TOKEN=demo-admin PREWARM_ACCESS_TOKEN=demo-access .venv/bin/python examples/scan.py

PREWARM_URL and PREWARM_ADMIN_URL point it elsewhere (defaults
http://127.0.0.1:8080 and http://127.0.0.1:8003).
"""

from __future__ import annotations

import itertools
import time
from typing import Dict, List

from prewarm import Client, Reading
from prewarm.compat import configure, get_warmer, get_worker, track_symbol_access

SECTORS = ["Tech", "Energy", "Health", "Finance", "Industrials", "Utilities",
           "Materials", "Staples", "Discretionary", "Telecom", "RealEstate"]


def universe(n: int = 200) -> List[str]:
    """``n`` ticker-like symbols (three letters), always the same ones."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    combos = ("".join(c) for c in itertools.product(letters, repeat=3))
    return [s for i, s in enumerate(combos) if i % 7 == 0][:n]


def scan(client: Client, symbols: List[str]) -> Dict[str, Reading]:
    """One pass of the scanner: every symbol's quote, through the cache."""
    return client.get_many(symbols)


def summary(label: str, readings: Dict[str, Reading], took_s: float) -> None:
    by_cache: Dict[str, int] = {}
    for r in readings.values():
        by_cache[r.cache or "ERROR"] = by_cache.get(r.cache or "ERROR", 0) + 1
    hits = by_cache.get("HIT", 0)
    print(f"{label}: {len(readings)} quotes in {took_s * 1000:.0f} ms, "
          f"{hits / max(1, len(readings)):.0%} hits {dict(sorted(by_cache.items()))}")


def main() -> None:
    client = configure(client_id="scanner-1", flush_interval_s=0.2)
    symbols = universe()
    sector_of = {s: SECTORS[i % len(SECTORS)] for i, s in enumerate(symbols)}

    started = time.monotonic()
    results = scan(client, symbols)
    summary("scan 1 (cold)", results, time.monotonic() - started)

    # The scan shows its top movers; report them so prewarm learns which
    # symbols matter, with their sectors (the groups of the sector strategy).
    movers = sorted(results, key=lambda s: -(results[s].data or {}).get("price", 0))[:40]
    for symbol in movers:
        for _ in range(3):
            track_symbol_access(symbol, context={"sector": sector_of[symbol], "user_id": "u1"})
    client.flush()
    print(f"tracked {len(movers) * 3} accesses of {len(movers)} symbols "
          f"(sent {client.sent}, dropped {client.dropped}, failed {client.failed})")

    # Later: the quotes expired (the daemon's TTL); the warmer refreshes the
    # popular ones before the next scan asks.
    purged = client.purge()
    print(f"purged {purged} cached quotes (as if their TTL ran out)")
    warmed = get_warmer().warm_popular_symbols(limit=50)
    print(f"warm_popular_symbols(50): {warmed['symbols_warmed']} warmed "
          f"in {warmed['duration_seconds']:.2f} s, {warmed['skipped']} skipped "
          f"{warmed['skipped_by_reason']}")

    started = time.monotonic()
    results = scan(client, symbols)
    summary("scan 2 (after warming)", results, time.monotonic() - started)
    mover_hits = sum(1 for s in movers if results[s].hit)
    print(f"  of the {len(movers)} symbols the scan showed, {mover_hits} were hits")

    status = get_worker().get_status()
    print(f"worker: running={status['running']} enabled={status['enabled']} "
          f"session={status['session']}")
    for job, at in sorted(status["next_runs"].items()):
        print(f"  next {job}: {at}")
    # The daemon's figures are a view it renews a few times a second: give
    # it a moment to count the scan that just ended.
    time.sleep(0.5)
    stats = get_warmer().get_stats()
    print(f"daemon hit rate since start: {stats['hit_rate']:.1%}; "
          f"warmed {stats['total_warmed']} {stats['by_strategy']}")
    client.close()


if __name__ == "__main__":
    main()
