"""What the sync and async clients share: settings, the access feed and
its counters (no requests here)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import httpx

from ._common import DEFAULT_BATCH_KEYS, DEFAULT_DATASET, Settings
from ._feed import DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_S, DEFAULT_QUEUE_SIZE, AccessFeed


class ClientBase:
    """Reads go to the proxy listener (``url``), warming, monitoring and
    purging to the admin listener (``admin_url``, with ``admin_token``);
    :meth:`track_access` feeds ``POST /v1/access`` (with ``access_token``)
    from a background thread. Unset URLs and tokens come from
    ``PREWARM_URL``, ``PREWARM_ADMIN_URL``, ``PREWARM_ACCESS_TOKEN`` and
    ``PREWARM_ADMIN_TOKEN``.

    ``batch_keys``: keys per batch read; ``queue_size``, ``feed_batch_size``
    and ``flush_interval_s``: the access feed's queue, batch and pace;
    ``transport`` and ``async_transport``: httpx transports (tests).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        admin_url: Optional[str] = None,
        *,
        access_token: Optional[str] = None,
        admin_token: Optional[str] = None,
        client_id: Optional[str] = None,
        timeout_s: float = 10.0,
        batch_keys: int = DEFAULT_BATCH_KEYS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        feed_batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        transport: Optional[httpx.BaseTransport] = None,
        async_transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self.settings = Settings.resolve(
            url, admin_url, access_token, admin_token, client_id, timeout_s, batch_keys
        )
        self._http = self._open_http(transport, async_transport)
        self._feed = AccessFeed(
            self.settings, queue_size, feed_batch_size, flush_interval_s, transport
        )

    def _open_http(
        self,
        transport: Optional[httpx.BaseTransport],
        async_transport: Optional[httpx.AsyncBaseTransport],
    ) -> Any:
        raise NotImplementedError

    # -- the access feed (proxy listener, background thread) --------------

    def track_access(
        self,
        key: str,
        client: Optional[str] = None,
        groups: Optional[Sequence[str]] = None,
        dataset: str = DEFAULT_DATASET,
    ) -> bool:
        """Queues an access the application served itself (``groups``: the
        key's sector, watchlist...). Never raises and never blocks;
        ``False`` when the queue was full (counted in :attr:`dropped`)."""
        return self._feed.track(key, dataset, client or self.settings.client_id, groups)

    @property
    def dropped(self) -> int:
        """Accesses dropped because the queue was full (or after close)."""
        return self._feed.dropped

    @property
    def failed(self) -> int:
        """Accesses lost because their batch could not be sent."""
        return self._feed.failed

    @property
    def sent(self) -> int:
        """Accesses the daemon accepted."""
        return self._feed.sent
