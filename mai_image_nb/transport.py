"""One HTTP attempt, reduced to plain data: a `Reply`, or a `NetworkFailure` to report later.

What a 2xx body means is `answers.py`'s job; retrying is `http_calls.py`'s. No Pillow here.

The key travels only as `BearerAuth` on the POST to `base_url`; image downloads go
through a session that never carries it. Errors built here hold plain text and
numbers, never a `requests` object (those hold the Authorization header).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import requests

from ._version import __version__
from .errors import (
    APIStatusError,
    AuthenticationError,
    RateLimitError,
    ResponseError,
)

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "BearerAuth",
    "NetworkFailure",
    "Reply",
    "SessionPool",
    "error_for_status",
    "fetch_image",
    "post_json",
]

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_ERROR_BODY_BYTES = 64 * 1024
# A 2xx answer holds at most one image at the cap as base64 (4/3 larger), plus its JSON.
MAX_ANSWER_BYTES = MAX_IMAGE_BYTES * 4 // 3 + 1024 * 1024
MAX_REDIRECTS = 5
CONNECT_TIMEOUT_MAX_S = 10.0  # the connect timeout is min(this, the client's timeout)
USER_AGENT = f"mai_image_nb/{__version__}"
_CHUNK = 64 * 1024

# One table from status code to error class; anything else is a plain APIStatusError.
STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    429: RateLimitError,
}


class BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <key>` for the API only; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


class SessionPool:
    """Sessions lent to one call at a time; up to `max_idle` per purpose kept for reuse.

    A session goes back to the pool when its call ends (not when a thread dies), so the
    connections stay bounded however many worker threads come and go; one returned to a
    full pool, or after `close()`, is closed at once.
    """

    def __init__(self, max_idle: int = 4) -> None:
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: dict[str, list[requests.Session]] = {}
        self._lent = 0
        self._closed = False

    @contextmanager
    def session(self, purpose: str) -> Iterator[requests.Session]:
        """A session for `purpose` ("api", "download") for the `with` block (after `close()`,
        a fresh one that is closed at the end)."""
        with self._lock:
            idle = self._idle.setdefault(purpose, [])
            session = idle.pop() if idle else None
            self._lent += 1
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            session.max_redirects = MAX_REDIRECTS
        try:
            yield session
        finally:
            with self._lock:
                self._lent -= 1
                idle = self._idle.setdefault(purpose, [])
                keep = not self._closed and len(idle) < self.max_idle
                if keep:
                    idle.append(session)
            if not keep:
                _close_session(session)

    @property
    def open_sessions(self) -> int:
        """Sessions lent out or kept idle now (for leak checks)."""
        with self._lock:
            return self._lent + sum(len(idle) for idle in self._idle.values())

    def close(self) -> None:
        """Close every idle session; those lent out are closed when their call ends."""
        with self._lock:
            self._closed = True
            sessions = [s for idle in self._idle.values() for s in idle]
            self._idle = {}
        for session in sessions:
            _close_session(session)


def _close_session(session: requests.Session) -> None:
    """Close `session` and every pooled connection now, not when the garbage collector runs.

    urllib3 2 only forgets its pools on `Session.close()` and closes their sockets when a pool
    is collected; a timed-out attempt's traceback (a reference cycle) can keep one alive.
    """
    for adapter in session.adapters.values():
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is not None:
            for key in pools.keys():  # noqa: SIM118 - urllib3's container only has keys()
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()


def _read_capped(
    response: requests.Response, limit: int, *, truncate: bool, what: str = "the answer"
) -> bytes:
    """At most `limit` bytes of the body: cut there (`truncate`), else ResponseError."""
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise ResponseError(f"{what} is {int(declared):,} bytes; the cap is {limit:,}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise ResponseError(f"{what} is over the cap of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer reduced to plain data."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes


def _read_reply(response: requests.Response, limit: int, *, what: str) -> Reply:
    """A 2xx body whole up to `limit` (else ResponseError); of an error page, only its start."""
    if response.status_code >= 300:
        body = _read_capped(response, MAX_ERROR_BODY_BYTES, truncate=True)
    else:
        body = _read_capped(response, limit, truncate=False, what=what)
    return Reply(response.status_code, response.headers, body)


def _timeouts(timeout_s: float) -> tuple[float, float]:
    """requests' (connect, read) timeouts for one attempt."""
    return min(CONNECT_TIMEOUT_MAX_S, timeout_s), timeout_s


@dataclass(frozen=True)
class NetworkFailure:
    """An attempt that got no HTTP answer: the caller builds the one error to raise from it."""

    kind: Literal["timeout", "connection", "redirects"]
    detail: str


def _failure(exc: requests.RequestException) -> NetworkFailure:
    if isinstance(exc, requests.Timeout):
        return NetworkFailure("timeout", _describe(exc))
    if isinstance(exc, requests.TooManyRedirects):
        return NetworkFailure("redirects", f"redirected more than {MAX_REDIRECTS} times")
    return NetworkFailure("connection", _describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return re.sub(r"\s+", " ", text)[:300]


def post_json(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    *,
    auth: BearerAuth | None,
    timeout_s: float,
) -> Reply | NetworkFailure:
    """POST `body` once and read the answer; a network failure is returned, not raised.

    The body is read in chunks up to a cap (a base64 image at the size cap, plus room
    for the JSON around it), so a hostile or broken answer cannot exhaust memory.

    Raises:
        ResponseError: a 2xx answer larger than the cap.
    """
    try:
        with session.post(
            url,
            json=body,
            auth=auth,
            timeout=_timeouts(timeout_s),
            allow_redirects=False,  # never replay the key to wherever a redirect points
            stream=True,
        ) as response:
            return _read_reply(response, MAX_ANSWER_BYTES, what="the answer")
    except requests.RequestException as exc:
        return _failure(exc)


def _server_message(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(message, request_id, kind) from any of the provider's error shapes."""
    try:
        data = json.loads(body[:MAX_ERROR_BODY_BYTES])
    except (ValueError, UnicodeDecodeError):
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    error = data.get("error")
    message = data.get("message")
    kind = None
    if isinstance(error, dict):
        message = error.get("message") or message
        details = error.get("data")
        if isinstance(details, dict) and isinstance(details.get("kind"), str):
            kind = details["kind"]
    elif isinstance(error, str) and not message:
        message = error
    if isinstance(message, list):  # some gateways send a list of validation messages
        message = "; ".join(str(m) for m in message)
    request_id = data.get("requestId") or data.get("request_id")
    return (
        str(message) if message else None,
        str(request_id) if request_id else None,
        kind,
    )


def error_for_status(reply: Reply, note: str = "") -> APIStatusError:
    """The error for an HTTP error answer: the server's own message (else the status text),
    then `note` (e.g. why it was not retried)."""
    message, request_id, kind = _server_message(reply.body)
    if not message:
        message = _STATUS_TEXT.get(reply.status, "error")
    request_id = request_id or reply.headers.get("x-request-id")
    cls = STATUS_ERRORS.get(reply.status, APIStatusError)
    text = message[:1000] + note
    return cls(text, status_code=reply.status, request_id=request_id, kind=kind)


_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def fetch_image(session: requests.Session, url: str, *, timeout_s: float) -> Reply | NetworkFailure:
    """GET an image URL once (no key: `session` never carries one), capped at 50 MiB.

    Raises:
        ResponseError: the body is larger than the cap.
    """
    try:
        with session.get(
            url, timeout=_timeouts(timeout_s), stream=True, allow_redirects=True
        ) as response:
            return _read_reply(response, MAX_IMAGE_BYTES, what="the image")
    except requests.RequestException as exc:
        return _failure(exc)
