"""Faults the simulator can answer instead of a normal answer, chaos mode, and their payloads.

A `Fault` is plain data; `handler.py` puts it on the wire. Standard library only.
"""

from __future__ import annotations

import http
import json
import math
import random
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "CHAOS_FAULTS",
    "Chaos",
    "Fault",
    "FaultName",
    "bomb_png",
    "error_payload",
    "html_error_page",
    "new_request_id",
]

FaultName = Literal[
    "status", "slow", "stall", "truncated_json", "body", "drop_connection", "empty_data",
    "null_data", "null_image", "bad_base64", "not_an_image", "dead_url", "bomb", "oversized",
]  # fmt: skip

# These answer at once, whatever the request: no key check, no validation, no image, no charge.
PREEMPTIVE: frozenset[str] = frozenset(
    {"status", "stall", "truncated_json", "body", "drop_connection"}
)
# These need an authorised, valid request and reshape its answer, which still reports
# meta.usage (the real service charges a 2xx it could not deliver well).
CHARGED: frozenset[str] = frozenset(
    {"slow", "empty_data", "null_data", "null_image", "bad_base64", "not_an_image", "dead_url",
     "bomb", "oversized"}
)  # fmt: skip

OUT_OF_CREDITS_KIND = "err_insufficent_credits"  # sic: the provider's spelling
BAD_BASE64 = "this is not base64!"
NOT_AN_IMAGE = b"This is not an image: the offline simulator was told to send text instead.\n"
DEFAULT_BOMB_SIDE_PX = 30_000
_KINDS_AND_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("err_validation", "Invalid request body"),
    401: ("err_unauthorized", "Missing or invalid API key"),
    403: ("err_forbidden", "Forbidden"),
    404: ("err_not_found", "Not found"),
    405: ("err_method_not_allowed", "Method not allowed"),
    408: ("err_timeout", "Request timed out"),
    409: ("err_conflict", "Conflict, please retry"),
    413: ("err_payload_too_large", "Request body too large"),
    422: ("err_validation", "Unprocessable request"),
    429: ("err_rate_limit", "Too many requests, please retry later"),
    500: ("err_internal", "Internal server error"),
    502: ("err_bad_gateway", "The upstream model provider failed"),
    503: ("err_unavailable", "Service temporarily unavailable"),
    504: ("err_gateway_timeout", "The upstream model provider timed out"),
}


def status_phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"


def default_kind_and_message(code: int) -> tuple[str, str]:
    return _KINDS_AND_MESSAGES.get(code, (f"err_http_{code}", status_phrase(code)))


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_payload(code: int, message: str, kind: str, request_id: str) -> dict[str, Any]:
    """The provider's error body: top-level message and requestId, kind under error.data."""
    return {
        "message": message,
        "requestId": request_id,
        "error": {"message": message, "data": {"kind": kind}},
        "statusCode": code,
    }


def html_error_page(code: int) -> bytes:
    """What a reverse proxy in front of the API answers when the service behind it fails."""
    title = f"{code} {status_phrase(code)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode("ascii")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG signature and IHDR chunk: the first bytes of a (greyscale) PNG of that size."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)


@lru_cache(maxsize=4)
def bomb_png(width: int = DEFAULT_BOMB_SIDE_PX, height: int = DEFAULT_BOMB_SIDE_PX) -> bytes:
    """A complete, valid 1-bit black PNG of `width`x`height`: tens of KiB that decode to a
    huge canvas (30000x30000 holds 900 megapixels). Built once per size, in slices."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    squeeze = zlib.compressobj(9)
    block_rows = max(1, (1 << 22) // len(row))
    parts = []
    for start in range(0, height, block_rows):
        parts.append(squeeze.compress(row * min(block_rows, height - start)))
    parts.append(squeeze.flush())
    idat = b"".join(parts)
    header = png_header(width, height, bit_depth=1, colour_type=0)
    return header + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _header_value(value: str | float | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Fault:
    """One answer the server gives instead of (or by reshaping) the normal one.

    Build them with the constructors (`Fault.status(429, retry_after="2")`, `Fault.slow(3)`...),
    then `server.script(...)` them or let `Chaos` draw them. `preempts` faults answer before the
    key check and validation and charge nothing; `charged` ones reshape the answer to a valid,
    authorised request and still report `meta.usage`, as the real service would.
    """

    name: FaultName
    status_code: int = 200
    retry_after: str | None = None
    retry_after_ms: str | None = None
    error_kind: str | None = None
    message: str | None = None
    html: bool = False
    seconds: float = 0.0
    raw: bytes = b""
    content_type: str = "application/json"
    n_bytes: int = 0
    width: int = 0
    height: int = 0

    @property
    def preempts(self) -> bool:
        return self.name in PREEMPTIVE

    @property
    def charged(self) -> bool:
        return self.name in CHARGED

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: str | float | None = None,
        retry_after_ms: str | float | None = None,
        kind: str | None = None,
        message: str | None = None,
        html: bool = False,
    ) -> Fault:
        """An error answer: the provider's JSON shape, or a proxy's HTML page with `html=True`.

        `retry_after` is sent verbatim as `Retry-After` (seconds or an HTTP date);
        `retry_after_ms` as `retry-after-ms`.
        """
        if not 100 <= code <= 599:
            raise ValueError(f"code={code!r} is not an HTTP status (100-599)")
        default_kind, default_message = default_kind_and_message(code)
        return cls(
            "status",
            status_code=code,
            retry_after=_header_value(retry_after),
            retry_after_ms=_header_value(retry_after_ms),
            error_kind=kind or default_kind,
            message=message or default_message,
            html=html,
        )

    @classmethod
    def out_of_credits(cls) -> Fault:
        """403 with kind `err_insufficent_credits`, as the provider answers an empty balance."""
        return cls.status(
            403,
            kind=OUT_OF_CREDITS_KIND,
            message="Insufficient credits. Top up your balance to keep generating.",
        )

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait `seconds`, then answer normally (charged): for client timeouts."""
        return cls("slow", seconds=non_negative("seconds", seconds))

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Wait `seconds`, then close the connection without answering (not charged)."""
        return cls("stall", seconds=non_negative("seconds", seconds))

    @classmethod
    def truncated_json(cls) -> Fault:
        """200, Content-Type JSON, the body cut halfway through (its usage cannot be read)."""
        return cls("truncated_json")

    @classmethod
    def body(cls, raw: bytes, status: int = 200, content_type: str = "application/json") -> Fault:
        """Any raw answer, sent as given."""
        return cls("body", raw=bytes(raw), status_code=status, content_type=content_type)

    @classmethod
    def drop_connection(cls) -> Fault:
        """Read the request, then close the socket without a byte of answer."""
        return cls("drop_connection")

    @classmethod
    def empty_data(cls) -> Fault:
        """200 with `"data": []`."""
        return cls("empty_data")

    @classmethod
    def null_data(cls) -> Fault:
        """200 with `"data": null`."""
        return cls("null_data")

    @classmethod
    def null_image(cls) -> Fault:
        """200 with one item whose `url` and `b64_json` are both null."""
        return cls("null_image")

    @classmethod
    def bad_base64(cls) -> Fault:
        """200 with a `b64_json` that is not base64."""
        return cls("bad_base64")

    @classmethod
    def not_an_image(cls) -> Fault:
        """200 whose image (a URL served as image/png, or `b64_json`) is plain text."""
        return cls("not_an_image")

    @classmethod
    def dead_url(cls) -> Fault:
        """200 with an image URL that answers 404."""
        return cls("dead_url")

    @classmethod
    def bomb(cls, width: int = DEFAULT_BOMB_SIDE_PX, height: int = DEFAULT_BOMB_SIDE_PX) -> Fault:
        """200 with a small, valid PNG (as `b64_json`) whose header claims `width`x`height`."""
        if width < 1 or height < 1:
            raise ValueError(f"width={width!r}, height={height!r}: both must be >= 1")
        return cls("bomb", width=width, height=height)

    @classmethod
    def oversized(cls, n_bytes: int) -> Fault:
        """200 with an image URL whose body is `n_bytes` long (a PNG header, then zeros)."""
        if n_bytes < 1:
            raise ValueError(f"n_bytes={n_bytes!r} must be >= 1")
        return cls("oversized", n_bytes=n_bytes)


def non_negative(name: str, seconds: float) -> float:
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"{name}={seconds!r} must be a finite number >= 0")
    return float(seconds)


CHAOS_FAULTS: tuple[str, ...] = (
    "rate_limit", "server_error", "html_error", "stall", "truncated_json", "empty_data",
    "not_an_image", "oversized", "dead_url",
)  # fmt: skip
_CHAOS_5XX = (500, 502, 503, 504)


@dataclass(frozen=True)
class Chaos:
    """Random faults for soak tests: each POST gets one with probability `rate`.

    The faults are drawn from `faults` (default: all of `CHAOS_FAULTS`) with a generator seeded
    by `seed`, so the same sequence of requests meets the same faults. A 429 asks to wait
    `retry_after_s` (as `retry-after-ms`, and rounded up to whole seconds as `Retry-After`); a
    stall holds the request `stall_s` seconds then hangs up; an oversized image is
    `oversized_bytes` long (just over the client's 50 MiB cap by default).
    """

    rate: float
    seed: int | None = None
    stall_s: float = 5.0
    retry_after_s: float = 0.05
    oversized_bytes: int = 50 * 1024 * 1024 + 1
    faults: tuple[str, ...] = field(default=CHAOS_FAULTS)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate={self.rate!r} must be between 0 and 1")
        unknown = sorted(set(self.faults) - set(CHAOS_FAULTS))
        if unknown or not self.faults:
            raise ValueError(f"faults={self.faults!r}: choose from {', '.join(CHAOS_FAULTS)}")
        non_negative("stall_s", self.stall_s)
        non_negative("retry_after_s", self.retry_after_s)

    def new_rng(self) -> random.Random:
        return random.Random(self.seed)

    def draw(self, rng: random.Random) -> Fault | None:
        """The fault for the next POST, or None for a normal answer."""
        roll, pick, code = rng.random(), rng.choice(self.faults), rng.choice(_CHAOS_5XX)
        if roll >= self.rate:
            return None
        if pick == "rate_limit":
            return Fault.status(
                429,
                retry_after=str(max(1, math.ceil(self.retry_after_s))),
                retry_after_ms=str(round(self.retry_after_s * 1000)),
            )
        if pick in ("server_error", "html_error"):
            return Fault.status(code, html=pick == "html_error")
        if pick == "stall":
            return Fault.stall(self.stall_s)
        if pick == "oversized":
            return Fault.oversized(self.oversized_bytes)
        constructor = {
            "truncated_json": Fault.truncated_json,
            "empty_data": Fault.empty_data,
            "not_an_image": Fault.not_an_image,
            "dead_url": Fault.dead_url,
        }[pick]
        return constructor()


def dumps(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
