"""The access feed: ``track_access`` appends to a bounded queue and a
background thread sends the items to ``POST /v1/access`` in batches.

Nothing on the caller's path raises or blocks: a full queue drops the item
and counts it in ``dropped``; a batch the daemon did not take (down,
refused, rate limited) is counted in ``failed`` and logged, never retried
forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence

import httpx

from ._common import Settings, access_item

log = logging.getLogger("prewarm")

#: Items queued at most before new ones are dropped.
DEFAULT_QUEUE_SIZE = 10_000
#: Items per ``POST /v1/access``.
DEFAULT_BATCH_SIZE = 500
#: Seconds between flushes of a partly filled queue.
DEFAULT_FLUSH_INTERVAL_S = 1.0


class AccessFeed:
    """A bounded queue of accesses and the thread that sends them.

    ``queue_size``: most items waiting; ``batch_size``: items per request;
    ``flush_interval_s``: longest an item waits while the queue is not a
    batch long. Counters (read any time): ``sent`` items the daemon
    accepted, ``dropped`` items refused because the queue was full,
    ``failed`` items lost because their batch could not be sent.
    """

    def __init__(
        self,
        settings: Settings,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self._settings = settings
        self._queue_size = max(1, queue_size)
        self._batch_size = max(1, batch_size)
        self._interval_s = max(0.01, flush_interval_s)
        self._transport = transport
        self._items: Deque[Dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._flushers = 0
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._http: Optional[httpx.Client] = None
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def track(
        self,
        key: str,
        dataset: str,
        client: Optional[str],
        groups: Optional[Sequence[str]],
    ) -> bool:
        """Queues one access; ``False`` (and ``dropped`` + 1) when the queue
        is full or the feed is closed. Never raises."""
        try:
            item = access_item(key, dataset, client, groups, time.time())
            with self._lock:
                if self._closed or len(self._items) >= self._queue_size:
                    self.dropped += 1
                    return False
                self._items.append(item)
                if len(self._items) >= self._batch_size:
                    self._wake.notify()
                self._start_locked()
            return True
        except Exception:  # the caller's path never sees an error
            log.debug("prewarm: access not queued", exc_info=True)
            return False

    @property
    def queued(self) -> int:
        """Items waiting to be sent."""
        with self._lock:
            return len(self._items)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Sends what is queued now; ``True`` once the queue is empty and
        nothing is in flight, ``False`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flushers += 1
            try:
                if self._items:
                    self._start_locked()
                    self._wake.notify()
                while self._items or self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None:
                        return False
                    self._idle.wait(left)
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Flushes, then stops the thread; later accesses are dropped."""
        self.flush(timeout_s)
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        if self._http is not None:
            self._http.close()

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._run, name="prewarm-access-feed", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._waits_locked():
                    self._wake.wait(self._interval_s)
                if self._closed and not self._items:
                    return
                batch: List[Dict[str, Any]] = []
                while self._items and len(batch) < self._batch_size:
                    batch.append(self._items.popleft())
                self._in_flight = len(batch)
            if batch:
                ok = self._send(batch)
            with self._lock:
                if batch:
                    if ok:
                        self.sent += len(batch)
                    else:
                        self.failed += len(batch)
                self._in_flight = 0
                if not self._items:
                    self._idle.notify_all()

    def _waits_locked(self) -> bool:
        """Whether the thread waits before its next batch: not while a
        batch is full, a flush waits, or the feed closes."""
        return not (
            self._closed or self._flushers or len(self._items) >= self._batch_size
        )

    def _send(self, batch: List[Dict[str, Any]]) -> bool:
        try:
            if self._http is None:
                self._http = httpx.Client(
                    base_url=self._settings.url,
                    timeout=self._settings.timeout_s,
                    transport=self._transport,
                )
            resp = self._http.post(
                "/v1/access", json=batch, headers=self._settings.access_headers()
            )
        except Exception as e:
            log.warning("prewarm: %d accesses not sent: %s", len(batch), e)
            return False
        if resp.status_code != 202:
            log.warning(
                "prewarm: %d accesses refused: HTTP %d %s",
                len(batch),
                resp.status_code,
                resp.text[:200],
            )
            return False
        return True
