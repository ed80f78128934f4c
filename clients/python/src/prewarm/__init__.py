"""Python client of prewarm, the cache-warming read-through cache.

>>> from prewarm import Client
>>> with Client(access_token="...", admin_token="...") as pw:   # doctest: +SKIP
...     quote = pw.get("AAPL")                 # Reading: data, cache (HIT/MISS/STALE), age_s
...     quotes = pw.get_many(["AAPL", "MSFT"])  # {key: Reading}
...     pw.track_access("NVDA", groups=["Tech"])  # queued, sent in the background
...     pw.warm("popular", limit=50)

:mod:`prewarm.compat` offers the calls of the warmer prewarm replaces
(``track_symbol_access``, ``get_warmer``, ``get_worker``).
"""

from ._async import AsyncClient
from ._client import Client
from ._common import Reading, Settings
from ._errors import (
    APIError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PrewarmError,
    RateLimited,
    Unauthorized,
    Unavailable,
    UpstreamError,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "NotFound",
    "PrewarmError",
    "RateLimited",
    "Reading",
    "Settings",
    "Unauthorized",
    "Unavailable",
    "UpstreamError",
]

__version__ = "0.1.0"
