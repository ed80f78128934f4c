"""Every operation of the async client against a live daemon."""

from __future__ import annotations

import pytest

import prewarm
from prewarm import AsyncClient

from conftest import ACCESS_TOKEN, ADMIN_TOKEN, Daemon

pytestmark = pytest.mark.anyio


def client_of(daemon: Daemon, **kwargs: object) -> AsyncClient:
    opts = {"access_token": ACCESS_TOKEN, "admin_token": ADMIN_TOKEN,
            "client_id": "py-async", "flush_interval_s": 0.05, **kwargs}
    return AsyncClient(daemon.url, daemon.admin_url, **opts)  # type: ignore[arg-type]


async def test_get_and_get_many(daemon: Daemon) -> None:
    async with client_of(daemon, batch_keys=2) as c:
        first = await c.get("ASA")
        assert first.cache == "MISS" and isinstance(first.data, dict)
        assert (await c.get("ASA")).cache == "HIT"
        got = await c.get_many(["ASM1", "ASM2", "ASM3"])
        assert sorted(got) == ["ASM1", "ASM2", "ASM3"]
        assert all(r.ok for r in got.values())
        with pytest.raises(prewarm.NotFound) as e:
            await c.get("ASA", dataset="nope")
        assert e.value.code == "unknown_dataset"
        with pytest.raises(prewarm.BadRequest):
            await c.get("bad key")


async def test_track_access_flush_and_sector(daemon: Daemon) -> None:
    async with client_of(daemon) as c:
        for key in ["ASS1", "ASS2"]:
            assert c.track_access(key, groups=["AsyncGroup"])
        assert await c.flush()
        assert c.sent == 2 and c.dropped == 0 and c.failed == 0
        report = await c.warm("sector", group="AsyncGroup")
        named = {k["key"] for k in report["warmed"] + report["skipped"]}
        assert named == {"ASS1", "ASS2"}


async def test_admin_calls(daemon: Daemon) -> None:
    async with client_of(daemon) as c:
        await c.get("ASW")
        assert (await c.warm("popular", limit=3))["strategies"] == ["popular"]
        assert (await c.warm("predictive", keys=["ASW"]))["strategies"] == ["predictive"]
        assert (await c.status())["running"] is True
        assert "quote" in (await c.stats())["datasets"]
        assert (await c.patterns(dataset="quote", limit=2))["datasets"][0]["dataset"] == "quote"
        assert (await c.save())["saved"]
        assert await c.healthy()
        with pytest.raises(prewarm.BadRequest):
            await c.warm("astrology")


async def test_purge(daemon: Daemon) -> None:
    async with client_of(daemon) as c:
        await c.get("ASP1")
        assert await c.purge(key="ASP1") == 1
        assert await c.purge(key="ASP1") == 0
        await c.get("ASP2")
        c.track_access("ASP2", groups=["AsyncPurge"])
        assert await c.flush()
        assert await c.purge(group="AsyncPurge") == 1
        await c.get("ASP3")
        assert await c.purge() >= 1


async def test_errors_are_typed(daemon: Daemon, dead_url: str) -> None:
    async with client_of(daemon, admin_token="wrong") as c:
        with pytest.raises(prewarm.Unauthorized):
            await c.purge(key="ASA")
    async with AsyncClient(dead_url, dead_url, timeout_s=1, flush_interval_s=0.05) as c:
        with pytest.raises(prewarm.ConnectionFailed):
            await c.get("ASA")
        assert not await c.healthy()
        assert c.track_access("ASDOWN") is True
        await c.flush(timeout_s=10)
        assert c.failed == 1


async def test_a_full_queue_drops_and_counts(dead_url: str) -> None:
    c = AsyncClient(dead_url, dead_url, queue_size=2, feed_batch_size=50, flush_interval_s=60)
    assert [c.track_access(f"AQ{i}") for i in range(5)] == [True, True, False, False, False]
    assert c.dropped == 3
    await c.aclose()
