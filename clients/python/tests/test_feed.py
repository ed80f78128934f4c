"""The access feed never raises on the caller's path: a daemon that is
down, a full queue, a missing token."""

from __future__ import annotations

from prewarm import Client

from conftest import ACCESS_TOKEN, Daemon


def test_track_access_never_raises_when_the_daemon_is_down(dead_url: str) -> None:
    with Client(dead_url, dead_url, access_token=ACCESS_TOKEN, timeout_s=1,
                flush_interval_s=0.05) as c:
        for i in range(20):
            assert c.track_access(f"DOWN{i}", client="u1", groups=["G"]) is True
        c.flush(timeout_s=10)
        assert c.failed == 20 and c.sent == 0 and c.dropped == 0


def test_a_full_queue_drops_and_counts(dead_url: str) -> None:
    # A queue of 3 that is not flushed for a minute: the rest is dropped.
    c = Client(dead_url, dead_url, queue_size=3, feed_batch_size=100, flush_interval_s=60)
    accepted = [c.track_access(f"FULL{i}") for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert c.dropped == 7
    c.close()
    assert c.track_access("AFTER") is False, "closed: dropped"
    assert c.dropped == 8


def test_batches_are_sent_when_the_queue_fills(daemon: Daemon) -> None:
    with Client(daemon.url, daemon.admin_url, access_token=ACCESS_TOKEN,
                feed_batch_size=10, flush_interval_s=60) as c:
        for i in range(25):
            c.track_access(f"BATCH{i % 5}")
        assert c.flush(timeout_s=10)
        assert (c.sent, c.failed, c.dropped) == (25, 0, 0)


def test_without_the_access_token_batches_fail_quietly(daemon: Daemon) -> None:
    with Client(daemon.url, daemon.admin_url, access_token="wrong",
                flush_interval_s=0.05) as c:
        assert c.track_access("NOTOKEN")
        c.flush(timeout_s=10)
        assert (c.sent, c.failed) == (0, 1)
