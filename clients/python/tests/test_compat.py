"""The shims of the warmer prewarm replaces, against a live daemon."""

from __future__ import annotations

import pytest

from prewarm import Client, compat

from conftest import ACCESS_TOKEN, ADMIN_TOKEN, Daemon


@pytest.fixture
def shared(daemon: Daemon):
    client = compat.configure(
        Client(daemon.url, daemon.admin_url, access_token=ACCESS_TOKEN,
               admin_token=ADMIN_TOKEN, flush_interval_s=0.05)
    )
    yield client
    client.close()


def test_track_symbol_access_turns_the_sector_into_a_group(shared: Client) -> None:
    for symbol in ["CPA1", "CPA2"]:
        compat.track_symbol_access(symbol, context={"sector": "CompatTech", "user_id": "u7"})
    compat.track_symbol_access("CPA3")
    assert shared.flush()
    assert shared.sent == 3
    result = compat.get_warmer().warm_sector("CompatTech")
    assert result["symbols_warmed"] + result["skipped"] == 2


def test_track_symbol_access_never_raises(dead_url: str) -> None:
    client = compat.configure(Client(dead_url, dead_url, timeout_s=1, flush_interval_s=0.05))
    compat.track_symbol_access("CPDOWN", context={"sector": "X"})
    compat.track_symbol_access("CPDOWN", context={"sector": None, "user": 42})
    client.flush(timeout_s=10)
    assert client.failed == 2
    client.close()


def test_the_warmers_calls_return_symbols_warmed_and_duration(shared: Client) -> None:
    shared.get("CPW")
    warmer = compat.get_warmer()
    results = [
        warmer.warm_popular_symbols(limit=10),
        warmer.warm_by_time_pattern(look_ahead_hours=2),
        warmer.warm_trending(window_hours=1),
        warmer.warm_predictive(["CPW"]),
        warmer.warm_predictive([]),
    ]
    for r in results:
        assert isinstance(r, dict)
        assert isinstance(r["symbols_warmed"], int) and r["symbols_warmed"] >= 0
        assert isinstance(r["duration_seconds"], float) and r["duration_seconds"] >= 0
        assert r.symbols_warmed == r["symbols_warmed"], "attribute access too"
    stats = warmer.get_stats()
    assert {"total_warmed", "by_strategy", "hit_rate"} <= set(stats)
    assert stats["total_warmed"] >= 0


def test_the_workers_status_and_manual_cycle(shared: Client) -> None:
    worker = compat.get_worker()
    worker.start()
    status = worker.get_status()
    assert status["running"] is True
    assert isinstance(status["next_runs"], dict) and status["next_runs"]
    result = worker.run_manual_cycle()
    assert {"symbols_warmed", "duration_seconds"} <= set(result)
    worker.stop()
