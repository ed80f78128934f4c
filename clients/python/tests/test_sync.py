"""Every operation of the sync client against a live daemon."""

from __future__ import annotations

import pytest

import prewarm
from prewarm import Client

from conftest import ACCESS_TOKEN, ADMIN_TOKEN, Daemon


@pytest.fixture
def client(daemon: Daemon):
    with Client(
        daemon.url,
        daemon.admin_url,
        access_token=ACCESS_TOKEN,
        admin_token=ADMIN_TOKEN,
        client_id="py-sync",
        flush_interval_s=0.05,
    ) as c:
        yield c


def test_get_misses_then_hits_with_age_and_the_upstream_body(client: Client) -> None:
    first = client.get("SGA")
    assert (first.cache, first.hit, first.ok) == ("MISS", False, True)
    assert isinstance(first.data, dict) and first.data, first.data
    again = client.get("SGA")
    assert again.cache == "HIT" and again.hit
    assert again.age_s is not None and again.age_s >= 0
    assert again.data == first.data


def test_get_errors_are_typed_with_the_daemons_message(client: Client) -> None:
    with pytest.raises(prewarm.NotFound) as e:
        client.get("SGA", dataset="nope")
    assert (e.value.status, e.value.code) == (404, "unknown_dataset")
    assert "nope" in e.value.message
    with pytest.raises(prewarm.BadRequest) as bad:
        client.get("not a key")
    assert bad.value.code == "invalid_key"
    assert isinstance(bad.value, prewarm.PrewarmError)


def test_get_many_reads_in_batches_with_per_key_results(daemon: Daemon) -> None:
    keys = [f"SGM{i}" for i in range(5)]
    with Client(daemon.url, daemon.admin_url, batch_keys=2) as c:
        got = c.get_many(keys + ["SGM0"])
        assert sorted(got) == keys
        assert all(r.ok and r.cache == "MISS" and isinstance(r.data, dict) for r in got.values())
        again = c.get_many(keys)
        assert {r.cache for r in again.values()} == {"HIT"}
        with pytest.raises(prewarm.NotFound):
            c.get_many(keys, dataset="nope")


def test_get_many_items_carry_cache_status_max_age_and_etag(daemon: Daemon) -> None:
    with Client(daemon.url, daemon.admin_url) as c:
        first = c.get_many(["SGE1", "bad key"])
        miss, bad = first["SGE1"], first["bad key"]
        assert miss.cache == "MISS" and miss.cache_status is not None
        assert miss.cache_status.startswith("prewarm; fwd=miss; fwd-status=200; stored; ttl=")
        assert isinstance(miss.max_age_s, int) and miss.max_age_s > 0
        assert miss.etag is not None and miss.etag.startswith('"')
        assert isinstance(bad.error, prewarm.BadRequest)
        assert bad.cache_status == "prewarm; fwd=miss; detail=invalid_key"
        assert bad.max_age_s is None and bad.etag is None
        hit = c.get_many(["SGE1"])["SGE1"]
        single = c.get("SGE1")
        assert hit.cache == single.cache == "HIT"
        assert hit.etag == single.etag == miss.etag, "the entry's ETag, as a single read gives it"
        assert hit.cache_status is not None and hit.cache_status.startswith("prewarm; hit; ttl=")
        assert single.cache_status is not None and single.cache_status.startswith("prewarm; hit; ttl=")
        assert single.max_age_s is not None and hit.max_age_s is not None
        assert 0 <= single.max_age_s <= hit.max_age_s <= miss.max_age_s


def test_track_access_reaches_the_tracker(client: Client) -> None:
    for _ in range(3):
        assert client.track_access("SGT", groups=["SyncSector"])
    assert client.flush(timeout_s=10)
    assert client.sent >= 3 and client.dropped == 0 and client.failed == 0
    popular = client.patterns(dataset="quote", limit=1000)["datasets"][0]["popular"]
    assert "SGT" in [k["key"] for k in popular]


def test_groups_from_track_access_feed_the_sector_strategy(client: Client) -> None:
    for key in ["SGS1", "SGS2", "SGS3"]:
        client.track_access(key, groups=["SyncGroup"])
    client.track_access("SGS4", groups=["OtherGroup"])
    assert client.flush()
    report = client.warm("sector", group="SyncGroup")
    named = {k["key"] for k in report["warmed"]} | {k["key"] for k in report["skipped"]}
    assert named == {"SGS1", "SGS2", "SGS3"}, report


def test_warm_runs_each_strategy_and_refuses_bad_ones(client: Client) -> None:
    client.get("SGW")
    report = client.warm("popular", limit=5)
    assert report["strategies"] == ["popular"]
    assert {"warmed", "skipped", "failed", "duration_ms"} <= set(report)
    for strategy, kwargs in [
        ("time", {"look_ahead_s": 600}),
        ("trending", {"window_s": 120}),
        ("predictive", {"keys": ["SGW"]}),
    ]:
        assert client.warm(strategy, **kwargs)["strategies"] == [strategy]
    assert "duration_ms" in client.warm()
    with pytest.raises(prewarm.BadRequest) as e:
        client.warm("astrology")
    assert e.value.code == "unknown_strategy"
    with pytest.raises(prewarm.BadRequest) as e:
        client.warm("sector")
    assert e.value.code == "missing_group"


def test_status_stats_patterns_and_save(client: Client) -> None:
    client.get("SGX")
    status = client.status()
    assert status["running"] is True and "schedules" in status
    stats = client.stats()
    assert stats["datasets"]["quote"]["since_start"]["requests"] >= 0
    patterns = client.patterns(limit=3)
    assert patterns["datasets"][0]["dataset"] == "quote"
    assert client.save()["saved"]
    assert client.healthy()


def test_purge_a_key_a_group_and_the_dataset(client: Client) -> None:
    client.get("SGP1")
    assert client.purge(key="SGP1") == 1
    assert client.purge(key="SGP1") == 0
    assert client.get("SGP1").cache == "MISS"
    for key in ["SGP2", "SGP3"]:
        client.get(key)
        client.track_access(key, groups=["PurgeGroup"])
    assert client.flush()
    assert client.purge(group="PurgeGroup") == 2
    client.get("SGP4")
    assert client.purge() >= 1
    assert client.get("SGP4").cache == "MISS"
    with pytest.raises(ValueError):
        client.purge(key="A", group="B")
    with pytest.raises(prewarm.NotFound):
        client.purge(dataset="nope")


def test_admin_calls_need_the_right_token(daemon: Daemon) -> None:
    with Client(daemon.url, daemon.admin_url, admin_token="wrong") as c:
        for call in (lambda: c.warm("popular"), lambda: c.purge(key="SGA")):
            with pytest.raises(prewarm.Unauthorized) as e:
                call()
            assert e.value.status == 401 and "token" in e.value.message


def test_a_daemon_that_is_down_raises_connection_failed(dead_url: str) -> None:
    with Client(dead_url, dead_url, timeout_s=2) as c:
        with pytest.raises(prewarm.ConnectionFailed):
            c.get("SGA")
        with pytest.raises(prewarm.PrewarmError):
            c.status()
        assert not c.healthy()
