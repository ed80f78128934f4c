"""Typed errors: every failure the client raises is a :class:`PrewarmError`."""

from __future__ import annotations

from typing import Any, Dict, Optional

import httpx

__all__ = [
    "PrewarmError",
    "ConnectionFailed",
    "APIError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "RateLimited",
    "UpstreamError",
    "Unavailable",
    "error_class",
    "error_from_response",
]


class PrewarmError(Exception):
    """Base of every error this package raises."""


class ConnectionFailed(PrewarmError):
    """The daemon could not be reached (refused, timed out, reset)."""


class APIError(PrewarmError):
    """The daemon answered with an error status.

    ``status`` is the HTTP status, ``code`` the daemon's error code (such as
    ``unknown_dataset``), ``message`` its message, ``body`` the whole JSON
    answer (or ``None`` when it was not JSON) and ``retry_after_s`` the
    ``Retry-After`` header in seconds, when sent.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: Optional[Dict[str, Any]] = None,
        retry_after_s: Optional[float] = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.retry_after_s = retry_after_s


class BadRequest(APIError):
    """400: the request is malformed (bad key, too many keys, bad field)."""


class Unauthorized(APIError):
    """401: the token is missing or wrong."""


class Forbidden(APIError):
    """403: the route is disabled (no token configured on the daemon)."""


class NotFound(APIError):
    """404: unknown dataset or route, or the upstream has no such key."""


class Conflict(APIError):
    """409: the daemon refused the warming cycle (warming disabled)."""


class RateLimited(APIError):
    """429: over the access feed's rate; see ``retry_after_s``."""


class UpstreamError(APIError):
    """502/503/504 from the upstream: failing, rate limiting or too slow."""


class Unavailable(APIError):
    """503 from the daemon itself (its warming driver is not running)."""


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    502: UpstreamError,
    504: UpstreamError,
}


def error_from_response(resp: httpx.Response) -> APIError:
    """The typed error of an error answer, with the daemon's message."""
    body: Optional[Dict[str, Any]] = None
    code, message = "http_error", resp.reason_phrase or "error"
    try:
        parsed = resp.json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        body = parsed
        err = parsed.get("error")
        if isinstance(err, dict):
            code = str(err.get("code", code))
            message = str(err.get("message", message))
    elif resp.text:
        message = resp.text.strip()[:512]
    retry: Optional[float] = None
    header = resp.headers.get("retry-after")
    if header is not None:
        try:
            retry = float(header)
        except ValueError:
            retry = None
    cls = error_class(resp.status_code, code)
    return cls(resp.status_code, code, message, body, retry)


def error_class(status: int, code: str) -> "type[APIError]":
    """The error class of an answer with ``status`` and error ``code``."""
    if status == 503:
        return UpstreamError if code.startswith("upstream_") else Unavailable
    return _BY_STATUS.get(status, APIError)
