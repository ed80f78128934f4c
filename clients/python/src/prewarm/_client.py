"""The synchronous client."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import httpx

from ._base import ClientBase
from ._common import (
    DEFAULT_DATASET,
    Params,
    Reading,
    check,
    chunks,
    patterns_params,
    purge_request,
    reading_of,
    readings_of,
    segment,
    warm_params,
)
from ._errors import ConnectionFailed


class Client(ClientBase):
    """A client of one prewarm daemon (thread-safe); see
    :class:`ClientBase` for the arguments. Use it as a context manager, or
    call :meth:`close`, to send the last accesses.
    """

    _http: httpx.Client

    def _open_http(
        self,
        transport: Optional[httpx.BaseTransport],
        async_transport: Optional[httpx.AsyncBaseTransport],
    ) -> httpx.Client:
        return httpx.Client(timeout=self.settings.timeout_s, transport=transport)

    # -- reads (proxy listener) ------------------------------------------

    def get(self, key: str, dataset: str = DEFAULT_DATASET) -> Reading:
        """``GET /v1/{dataset}/{key}``: the value, with ``X-Cache`` and
        ``Age``. Raises the typed error of a failed read."""
        url = f"{self.settings.url}/v1/{segment(dataset)}/{segment(key)}"
        resp = self._send("GET", url, headers=self.settings.read_headers())
        return reading_of(key, check(resp))

    def get_many(self, keys: Sequence[str], dataset: str = DEFAULT_DATASET) -> Dict[str, Reading]:
        """``POST /v1/{dataset}`` in batches of ``batch_keys``: a reading
        per key; a key that failed carries its error in ``Reading.error``
        (the call raises only when a whole batch fails)."""
        out: Dict[str, Reading] = {}
        url = f"{self.settings.url}/v1/{segment(dataset)}"
        for batch in chunks(keys, self.settings.batch_keys):
            resp = self._send(
                "POST", url, json={"keys": batch}, headers=self.settings.read_headers()
            )
            out.update(readings_of(check(resp).json()))
        return out

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Sends the queued accesses now; ``True`` once all are out."""
        return self._feed.flush(timeout_s)

    def close(self) -> None:
        """Sends the queued accesses, then closes the connections."""
        self._feed.close()
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- admin listener --------------------------------------------------

    def warm(
        self,
        strategy: Optional[str] = None,
        limit: Optional[int] = None,
        group: Optional[str] = None,
        *,
        dataset: Optional[str] = None,
        look_ahead_s: Optional[float] = None,
        window_s: Optional[float] = None,
        keys: Optional[Sequence[str]] = None,
    ) -> Dict[str, Any]:
        """``POST /warming/run``: runs a cycle (``strategy`` ``popular``,
        ``time``, ``trending``, ``predictive`` with ``keys``, ``sector``
        with ``group``; ``None``: the pre-market cycle) and answers once
        its fetches are back: ``warmed``, ``skipped``, ``failed``,
        ``duration_ms``."""
        params = warm_params(strategy, limit, group, dataset, look_ahead_s, window_s, keys)
        return self._admin("POST", "/warming/run", params)

    def status(self) -> Dict[str, Any]:
        """``GET /warming/status``."""
        return self._admin("GET", "/warming/status")

    def stats(self) -> Dict[str, Any]:
        """``GET /warming/stats``."""
        return self._admin("GET", "/warming/stats")

    def patterns(
        self,
        dataset: Optional[str] = None,
        limit: Optional[int] = None,
        key: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``GET /warming/patterns``: what the trackers learned."""
        return self._admin("GET", "/warming/patterns", patterns_params(dataset, limit, key))

    def save(self) -> Dict[str, Any]:
        """``POST /warming/save``: writes every snapshot now."""
        return self._admin("POST", "/warming/save")

    def purge(
        self,
        key: Optional[str] = None,
        group: Optional[str] = None,
        dataset: str = DEFAULT_DATASET,
    ) -> int:
        """``DELETE /cache/...``: drops one key's entry, a group's, or (with
        neither) the whole dataset's; returns how many entries were there."""
        path, params = purge_request(dataset, key, group)
        return int(self._admin("DELETE", path, params)["purged"])

    def healthy(self) -> bool:
        """Whether ``GET /healthz`` answers 200."""
        try:
            return self._send("GET", f"{self.settings.admin_url}/healthz").status_code == 200
        except ConnectionFailed:
            return False

    # -- plumbing --------------------------------------------------------

    def _admin(self, method: str, path: str, params: Optional[Params] = None) -> Dict[str, Any]:
        url = f"{self.settings.admin_url}{path}"
        resp = self._send(method, url, params=params, headers=self.settings.admin_headers())
        answer: Dict[str, Any] = check(resp).json()
        return answer

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            raise ConnectionFailed(f"{method} {url}: {e}") from e
