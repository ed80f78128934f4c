#!/usr/bin/env python3
"""Measures each strategy alone and all together with `prewarm replay --json`
and prints the README's results table (markdown).

usage: scripts/strategy-table.py PREWARM_BIN TRACE[:UNIVERSE] ... [--ttl 60,300]
"""
import json
import re
import subprocess
import sys


def strategy_names(binary):
    """The strategies, in index order, as `prewarm replay --help` lists them
    for `--strategies` (`(popular,time,...)`, made from StrategyId::ALL)."""
    out = subprocess.run([binary, "replay", "--help"], check=True, capture_output=True, text=True).stdout
    found = re.search(r"Comma-separated strategies \(([a-z,]+)\)", out)
    if not found:
        sys.exit(f"{binary} replay --help does not list the strategies")
    return found.group(1).split(",")


def run(binary, trace, universe, ttl, strategies):
    cmd = [binary, "replay", "--trace", trace, "--ttl", str(ttl), "--strategies", strategies, "--json"]
    if universe:
        cmd += ["--universe", universe]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    args = sys.argv[1:]
    ttls = [60, 300]
    if "--ttl" in args:
        i = args.index("--ttl")
        ttls = [int(x) for x in args[i + 1].split(",")]
        del args[i : i + 2]
    binary, traces = args[0], args[1:]
    configs = strategy_names(binary) + ["all"]
    print("| trace | TTL | strategies | hit rate | gap closed | miss reduction | cost ratio | efficiency |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for spec in traces:
        trace, _, universe = spec.partition(":")
        for ttl in ttls:
            for st in configs:
                r = run(binary, trace, universe, ttl, st)
                b, w, bound = r["baseline"]["hit_rate"], r["warmed"], r["bound"]["hit_rate"]
                gap = (w["hit_rate"] - b) / (bound - b) if bound > b else 0.0
                print(
                    f"| {r['trace']} | {ttl} | {st} | {w['hit_rate']*100:.2f} % (base {b*100:.2f}, bound {bound*100:.2f}) "
                    f"| {gap:.3f} | {w['miss_reduction']:.4f} | {w['cost_ratio']:.3f} | {w['warming_efficiency']:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
