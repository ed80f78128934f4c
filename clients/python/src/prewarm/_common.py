"""What the sync and async clients share: settings, request shapes and
answer parsing (no I/O here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

import httpx

from ._errors import APIError, error_class, error_from_response

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_ADMIN_URL = "http://127.0.0.1:8003"
DEFAULT_DATASET = "quote"
#: Keys per batch request (the daemon's ``server.max_batch_keys`` default).
DEFAULT_BATCH_KEYS = 1000

Params = Dict[str, Union[str, int, float]]


@dataclass(frozen=True)
class Settings:
    """Where the daemon is and how to talk to it.

    ``url``: the proxy listener; ``admin_url``: the admin listener;
    ``access_token``: sent with ``POST /v1/access``; ``admin_token``: sent
    to the admin listener; ``client_id``: sent as ``X-Client-Id`` with
    reads; ``timeout_s``: per request, seconds. Unset arguments come from
    the environment (``PREWARM_URL``, ``PREWARM_ADMIN_URL``,
    ``PREWARM_ACCESS_TOKEN``, ``PREWARM_ADMIN_TOKEN``), then the daemon's
    defaults.
    """

    url: str = DEFAULT_URL
    admin_url: str = DEFAULT_ADMIN_URL
    access_token: Optional[str] = None
    admin_token: Optional[str] = None
    client_id: Optional[str] = None
    timeout_s: float = 10.0
    batch_keys: int = DEFAULT_BATCH_KEYS
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls,
        url: Optional[str] = None,
        admin_url: Optional[str] = None,
        access_token: Optional[str] = None,
        admin_token: Optional[str] = None,
        client_id: Optional[str] = None,
        timeout_s: float = 10.0,
        batch_keys: int = DEFAULT_BATCH_KEYS,
    ) -> "Settings":
        env = os.environ.get
        return cls(
            url=(url or env("PREWARM_URL") or DEFAULT_URL).rstrip("/"),
            admin_url=(admin_url or env("PREWARM_ADMIN_URL") or DEFAULT_ADMIN_URL).rstrip("/"),
            access_token=access_token or env("PREWARM_ACCESS_TOKEN") or None,
            admin_token=admin_token or env("PREWARM_ADMIN_TOKEN") or None,
            client_id=client_id,
            timeout_s=timeout_s,
            batch_keys=max(1, batch_keys),
        )

    def read_headers(self) -> Dict[str, str]:
        return {"X-Client-Id": self.client_id} if self.client_id else {}

    def admin_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def access_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}


@dataclass(frozen=True)
class Reading:
    """One key's value as the proxy served it.

    ``data``: the upstream's body (parsed JSON, else text); ``cache``:
    ``HIT``, ``MISS`` or ``STALE``; ``age_s``: whole seconds since the
    fetch. In :meth:`Client.get_many` a key that failed has ``data`` and
    ``cache`` ``None`` and its typed error in ``error``.

    The cache facts, from the headers of a single read or the fields of a
    batch item: ``cache_status``: the ``Cache-Status`` (RFC 9211) text,
    e.g. ``prewarm; hit; ttl=42`` (also on a failed batch item);
    ``max_age_s``: seconds of freshness left (``Cache-Control: max-age``,
    0 when stale); ``etag``: the upstream's ``ETag``, ``None`` when it gave
    none. Each is ``None`` when the daemon did not say.
    """

    key: str
    data: Any
    cache: Optional[str]
    age_s: Optional[int]
    error: Optional[APIError] = None
    cache_status: Optional[str] = None
    max_age_s: Optional[int] = None
    etag: Optional[str] = None

    @property
    def ok(self) -> bool:
        """Whether a value was served."""
        return self.error is None

    @property
    def hit(self) -> bool:
        """Whether it was served fresh from the cache."""
        return self.cache == "HIT"


def segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return quote(text, safe="")


def check(resp: httpx.Response) -> httpx.Response:
    """``resp`` when it is a success, else its typed error raised."""
    if resp.status_code >= 400:
        raise error_from_response(resp)
    return resp


def body_of(resp: httpx.Response) -> Any:
    """The parsed JSON of ``resp``, or its text when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return resp.text


def max_age_of(cache_control: Optional[str]) -> Optional[int]:
    """The ``max-age`` seconds of a ``Cache-Control`` value, if any."""
    for directive in (cache_control or "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return int(value)
    return None


def reading_of(key: str, resp: httpx.Response) -> Reading:
    """The reading of a ``GET /v1/{dataset}/{key}`` success."""
    age = resp.headers.get("age")
    return Reading(
        key=key,
        data=body_of(resp),
        cache=resp.headers.get("x-cache"),
        age_s=int(age) if age and age.isdigit() else None,
        cache_status=resp.headers.get("cache-status"),
        max_age_s=max_age_of(resp.headers.get("cache-control")),
        etag=resp.headers.get("etag"),
    )


def optional_int(value: Any) -> Optional[int]:
    """``value`` when it is a whole number (not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def readings_of(answer: Mapping[str, Any]) -> Dict[str, Reading]:
    """The readings of a batch answer (per-key errors typed, not raised)."""
    out: Dict[str, Reading] = {}
    for key, item in answer.items():
        err = item.get("error") if isinstance(item, dict) else None
        facts = {
            "cache_status": item.get("cache_status"),
            "max_age_s": optional_int(item.get("max_age_s")),
            "etag": item.get("etag"),
        }
        if isinstance(err, dict):
            status = int(err.get("status", 502))
            code = str(err.get("code", ""))
            error = error_class(status, code)(status, code, str(err.get("message", "")), item)
            out[key] = Reading(key, None, None, None, error, **facts)
        else:
            out[key] = Reading(key, item.get("data"), item.get("cache"), item.get("age_s"), **facts)
    return out


def chunks(keys: Sequence[str], size: int) -> Iterable[List[str]]:
    """``keys`` in order, deduplicated, in lists of at most ``size``."""
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), size):
        yield unique[i : i + size]


def warm_params(
    strategy: Optional[str],
    limit: Optional[int],
    group: Optional[str],
    dataset: Optional[str],
    look_ahead_s: Optional[float],
    window_s: Optional[float],
    keys: Optional[Sequence[str]],
) -> Params:
    """The query of ``POST /warming/run`` (unset values left out)."""
    params: Params = {}
    for name, value in (
        ("strategy", strategy),
        ("limit", limit),
        ("group", group),
        ("dataset", dataset),
        ("look_ahead_s", look_ahead_s),
        ("window_s", window_s),
    ):
        if value is not None:
            params[name] = value
    if keys:
        params["keys"] = ",".join(keys)
    return params


def patterns_params(dataset: Optional[str], limit: Optional[int], key: Optional[str]) -> Params:
    """The query of ``GET /warming/patterns``."""
    params: Params = {}
    for name, value in (("dataset", dataset), ("limit", limit), ("key", key)):
        if value is not None:
            params[name] = value
    return params


def purge_request(
    dataset: str, key: Optional[str], group: Optional[str]
) -> Tuple[str, Params]:
    """Path and query of a purge: one key, a group, or the whole dataset."""
    if key is not None and group is not None:
        raise ValueError("purge takes a key or a group, not both")
    if key is not None:
        return f"/cache/{segment(dataset)}/{segment(key)}", {}
    if group is not None:
        return f"/cache/{segment(dataset)}", {"group": group}
    return f"/cache/{segment(dataset)}", {}


def access_item(
    key: str,
    dataset: str,
    client: Optional[str],
    groups: Optional[Sequence[str]],
    ts: float,
) -> Dict[str, Any]:
    """One item of ``POST /v1/access``."""
    item: Dict[str, Any] = {"dataset": dataset, "key": key, "ts": ts}
    if client:
        item["client"] = client
    if groups:
        item["groups"] = list(groups)
    return item
