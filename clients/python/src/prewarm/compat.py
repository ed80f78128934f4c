"""The calls of the Python warmer prewarm replaces, over a prewarm daemon,
so an application changes only its imports::

    # from technic_v4.cache.access_tracker import track_symbol_access
    # from technic_v4.cache.cache_warmer import get_warmer
    from prewarm.compat import track_symbol_access, get_warmer, get_worker

- ``track_symbol_access(symbol, context=None)`` queues an access
  (``context={'sector': ...}`` becomes the key's group, ``'user_id'`` or
  ``'client'`` its client); it never raises.
- ``get_warmer()`` has ``warm_popular_symbols(limit)``,
  ``warm_by_time_pattern(look_ahead_hours)``, ``warm_trending(window_hours)``,
  ``warm_predictive(current_symbols)`` and ``get_stats()``: each ``warm_*``
  runs that strategy's cycle (``POST /warming/run``) and returns a
  :class:`WarmResult`, a dict with ``symbols_warmed`` and
  ``duration_seconds`` (also readable as attributes).
- ``get_worker()`` has ``get_status()`` (``running``, ``next_runs``, and the
  daemon's whole status) and ``run_manual_cycle()`` (the pre-market cycle).
  The daemon runs the schedules: ``start()`` and ``stop()`` do nothing.

The shared client comes from the environment (``PREWARM_URL``,
``PREWARM_ADMIN_URL``, ``PREWARM_ACCESS_TOKEN``, ``PREWARM_ADMIN_TOKEN``)
unless :func:`configure` gives one.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._client import Client

__all__ = [
    "WarmResult",
    "Warmer",
    "Worker",
    "configure",
    "get_client",
    "get_warmer",
    "get_worker",
    "track_symbol_access",
]

_lock = threading.Lock()
_client: Optional[Client] = None

#: Context fields that name a group of the symbol.
GROUP_FIELDS = ("sector", "industry", "watchlist", "index")
#: Context fields that name the client, first found wins.
CLIENT_FIELDS = ("client", "user_id", "user")


def configure(client: Optional[Client] = None, **kwargs: Any) -> Client:
    """Sets the client the shims use: ``client``, or a new :class:`Client`
    built with ``kwargs``. The previous one is closed."""
    global _client
    new = client if client is not None else Client(**kwargs)
    with _lock:
        old, _client = _client, new
    if old is not None and old is not new:
        old.close()
    return new


def get_client() -> Client:
    """The shims' client (built from the environment on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = Client()
        return _client


def _groups(context: Optional[Mapping[str, Any]]) -> List[str]:
    if not context:
        return []
    groups: List[str] = []
    for name in GROUP_FIELDS:
        value = context.get(name)
        values = value if isinstance(value, (list, tuple)) else [value]
        groups.extend(str(v) for v in values if v)
    return list(dict.fromkeys(groups))[:4]


def track_symbol_access(symbol: str, context: Optional[Mapping[str, Any]] = None) -> None:
    """Queues one access of ``symbol`` for the daemon to learn from; never
    raises, never blocks."""
    try:
        client = None
        for name in CLIENT_FIELDS:
            if context and context.get(name):
                client = str(context[name])
                break
        get_client().track_access(symbol, client=client, groups=_groups(context) or None)
    except Exception:  # the scanner's path never sees an error
        pass


class WarmResult(Dict[str, Any]):
    """A warming cycle's result: ``symbols_warmed`` (count),
    ``duration_seconds``, ``symbols`` (the keys warmed), ``skipped``,
    ``skipped_by_reason`` (``fresh``, ``in_flight``, ``no_budget``, ``cost_cap``...),
    ``failed``; keys readable as attributes too."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    @classmethod
    def of(cls, report: Mapping[str, Any]) -> "WarmResult":
        warmed = [k["key"] for k in report.get("warmed", [])]
        reasons: Dict[str, int] = {}
        for k in report.get("skipped", []):
            reasons[str(k.get("reason"))] = reasons.get(str(k.get("reason")), 0) + 1
        return cls(
            symbols_warmed=len(warmed),
            duration_seconds=float(report.get("duration_ms", 0.0)) / 1000.0,
            symbols=warmed,
            skipped=len(report.get("skipped", [])),
            skipped_by_reason=reasons,
            failed=len(report.get("failed", [])),
            strategies=list(report.get("strategies", [])),
        )


class Warmer:
    """The warmer's calls, each one cycle of a daemon strategy."""

    def __init__(self, client: Optional[Client] = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        return self._client or get_client()

    def warm_popular_symbols(self, limit: int = 100) -> WarmResult:
        """The ``limit`` most popular symbols (decayed)."""
        return WarmResult.of(self.client.warm("popular", limit=limit))

    def warm_by_time_pattern(self, look_ahead_hours: float = 1.0) -> WarmResult:
        """Symbols expected within ``look_ahead_hours`` by time of day."""
        look_ahead_s = min(max(look_ahead_hours, 1 / 60), 7 * 24) * 3600.0
        return WarmResult.of(self.client.warm("time", look_ahead_s=look_ahead_s))

    def warm_trending(self, window_hours: float = 1.0) -> WarmResult:
        """Symbols whose rate rises over ``window_hours``."""
        window_s = min(max(window_hours, 1 / 60), 7 * 24) * 3600.0
        return WarmResult.of(self.client.warm("trending", window_s=window_s))

    def warm_predictive(self, current_symbols: Sequence[str]) -> WarmResult:
        """Symbols likely to be asked next after ``current_symbols``."""
        if not current_symbols:
            return WarmResult.of({})
        return WarmResult.of(self.client.warm("predictive", keys=list(current_symbols)))

    def warm_sector(self, sector: str) -> WarmResult:
        """The leading symbols of ``sector``."""
        return WarmResult.of(self.client.warm("sector", group=sector))

    def get_stats(self) -> Dict[str, Any]:
        """``total_warmed``, ``by_strategy`` (warmed per strategy),
        ``hit_rate`` and the daemon's whole ``/warming/stats``."""
        stats = self.client.stats()
        total = 0
        by_strategy: Dict[str, int] = {}
        hits = requests = 0
        for ds in stats.get("datasets", {}).values():
            since = ds.get("since_start", {})
            total += int(since.get("warmed", 0))
            hits += int(since.get("hits", 0))
            requests += int(since.get("requests", 0))
            for name, fig in since.get("strategies", {}).items():
                by_strategy[name] = by_strategy.get(name, 0) + int(fig.get("warmed", 0))
        return {
            "total_warmed": total,
            "by_strategy": by_strategy,
            "hit_rate": hits / requests if requests else 0.0,
            "daemon": stats,
        }


class Worker:
    """The background worker's calls; the daemon runs the schedules."""

    def __init__(self, client: Optional[Client] = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        return self._client or get_client()

    def start(self) -> None:
        """Nothing to do: the daemon runs the schedules."""

    def stop(self) -> None:
        """Nothing to do: the daemon runs the schedules."""

    def get_status(self) -> Dict[str, Any]:
        """``running``, ``enabled``, ``next_runs`` (job → next run, UTC)
        and the daemon's whole ``/warming/status``."""
        status = self.client.status()
        next_runs = {
            str(s.get("job")): (s.get("next_run") or {}).get("utc")
            for s in status.get("schedules", [])
        }
        return {
            **status,
            "running": bool(status.get("running")),
            "enabled": bool(status.get("enabled")),
            "next_runs": next_runs,
        }

    def run_manual_cycle(self) -> WarmResult:
        """The pre-market cycle now (popular, then time-of-day symbols)."""
        return WarmResult.of(self.client.warm())


def get_warmer() -> Warmer:
    """The warmer (over the shared client)."""
    return Warmer()


def get_worker() -> Worker:
    """The worker (over the shared client)."""
    return Worker()
