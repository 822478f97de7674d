"""One HTTP attempt and what its answer means: failures become this package's errors.

The key travels only as `BearerAuth` on the POST to `base_url`; image downloads go
through a session that never carries it. Errors built here hold plain text and
numbers, never a `requests` object (those hold the Authorization header).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import requests
from PIL import Image

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    RateLimitError,
    ResponseError,
    ServerBudgetError,
)
from .generation import Usage

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "BearerAuth",
    "Reply",
    "SessionPool",
    "error_for_status",
    "fetch_image",
    "inspect_image",
    "parse_generation",
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
_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}

# One table from status code to error class; anything else is a plain APIStatusError.
STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    402: ServerBudgetError,
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
    """One `requests.Session` per thread and purpose, all closed by `close()`."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[requests.Session] = []
        self._closed = False

    def get(self, purpose: str) -> requests.Session:
        session: requests.Session | None = getattr(self._local, purpose, None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            session.max_redirects = MAX_REDIRECTS
            with self._lock:
                if self._closed:
                    session.close()
                    raise APIConnectionError("the client is closed")
                self._all.append(session)
            setattr(self._local, purpose, session)
        return session

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions, self._all = self._all, []
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
) -> Reply:
    """POST `body` once and read the answer; network failures become our errors.

    The body is read in chunks up to a cap (a base64 image at the size cap, plus room
    for the JSON around it), so a hostile or broken answer cannot exhaust memory.

    Raises:
        APIConnectionError / APITimeoutError: the request failed on the network.
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
    except requests.Timeout as exc:
        raise APITimeoutError(f"timed out after {timeout_s:g} s: {_describe(exc)}") from None
    except requests.RequestException as exc:
        raise APIConnectionError(f"connection failed: {_describe(exc)}") from None


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


def error_for_status(reply: Reply) -> APIStatusError:
    """The error for an HTTP error answer: the server's own message, else the status text."""
    message, request_id, kind = _server_message(reply.body)
    if not message:
        message = _STATUS_TEXT.get(reply.status, "error")
    request_id = request_id or reply.headers.get("x-request-id")
    cls = STATUS_ERRORS.get(reply.status, APIStatusError)
    return cls(message[:1000], status_code=reply.status, request_id=request_id, kind=kind)


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


@dataclass(frozen=True)
class ImageRef:
    """Where the answer's image is: a URL to fetch, or bytes already decoded from base64."""

    url: str | None
    data: bytes | None


def parse_generation(body: bytes) -> tuple[ImageRef, Usage | None]:
    """Read a 2xx body: the first image and the usage it reports.

    Usage is returned even when the image part is unusable, so the spend is counted
    (the service may have charged for it); callers check `ImageRef` afterwards.

    Raises:
        ResponseError: the body is not JSON, or holds no usable image reference.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ResponseError(
            f"the service answered 2xx with a body that is not JSON ({len(body)} bytes)"
        ) from None
    if not isinstance(payload, dict):
        raise ResponseError("the service answered 2xx with JSON that is not an object")
    usage = _parse_usage(payload.get("meta"))
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise _ChargedResponseError(
            "the answer holds no images ('data' is missing or empty)", usage
        )
    first = data[0]
    if not isinstance(first, dict):
        raise _ChargedResponseError("the answer's first image is not an object", usage)
    b64 = first.get("b64_json")
    url = first.get("url")
    if isinstance(b64, str) and b64:
        try:
            decoded = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise _ChargedResponseError(
                "the answer's b64_json is not valid base64", usage
            ) from None
        return ImageRef(None, decoded), usage
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return ImageRef(url, None), usage
    raise _ChargedResponseError("the answer's image has neither a usable url nor b64_json", usage)


class _ChargedResponseError(ResponseError):
    """A ResponseError raised after the body reported usage (so it is still counted)."""

    def __init__(self, message: str, usage: Usage | None) -> None:
        super().__init__(message)
        self.usage = usage


def _parse_usage(meta: object) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    usage = meta.get("usage")
    if not isinstance(usage, dict):
        return None
    credits, usd = usage.get("credits_used"), usage.get("usd_spent")
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not usd >= 0:
        return None
    if isinstance(credits, bool) or not isinstance(credits, (int, float)):
        credits = 0.0
    return Usage(credits_used=float(credits), usd_spent=float(usd))


def fetch_image(session: requests.Session, url: str, *, timeout_s: float) -> Reply:
    """GET an image URL once (no key: `session` never carries one), capped at 50 MiB.

    Raises:
        APIConnectionError / APITimeoutError: the download failed on the network.
        ResponseError: the body is larger than the cap.
    """
    try:
        with session.get(
            url, timeout=_timeouts(timeout_s), stream=True, allow_redirects=True
        ) as response:
            return _read_reply(response, MAX_IMAGE_BYTES, what="the image")
    except requests.Timeout as exc:
        raise APITimeoutError(f"image download timed out: {_describe(exc)}") from None
    except requests.TooManyRedirects:
        raise ResponseError(f"the image URL redirected more than {MAX_REDIRECTS} times") from None
    except requests.RequestException as exc:
        raise APIConnectionError(f"image download failed: {_describe(exc)}") from None


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an image we accept, reading only its header and checksums.

    Raises:
        ResponseError: not PNG/JPEG/WebP, damaged, or over 50 MiB or 40 megapixels.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ResponseError(f"the image is {len(data):,} bytes; the cap is {MAX_IMAGE_BYTES:,}")
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) and not (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    ):
        raise ResponseError(
            f"the answer is not a PNG, JPEG or WebP image (starts with {data[:8]!r})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                width, height = image.size
                image_format = _FORMATS[str(image.format)]
                if width * height > MAX_IMAGE_PIXELS:
                    raise ResponseError(
                        f"the image is {width}×{height} pixels; the cap is "
                        f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels"
                    )
                image.verify()
    except ResponseError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ResponseError(
            f"the image claims more pixels than the cap of {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, struct.error…
        raise ResponseError(f"the image could not be read: {_describe(exc)}") from None
    return image_format, width, height
