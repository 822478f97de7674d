"""What a 2xx answer holds: its cost and its images, read separately and leniently.

The cost is read first and on its own, so an answer whose images are unusable is still
charged; images are every entry of `data` (base64 with whitespace or as a `data:` URI,
or a URL to fetch). `inspect_image` checks bytes with Pillow without decoding pixels.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from PIL import Image

from .errors import ResponseError
from .generation import Generation
from .params import Params
from .transport import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from .usage import Usage

__all__ = [
    "ImageRef",
    "image_refs",
    "inspect_image",
    "load_answer",
    "new_generation",
    "parse_usage",
]

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
_DATA_URI = re.compile(r"data:[\w.+/-]*(?:;[\w.+=-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class ImageRef:
    """Where one image of the answer is: a URL to fetch, or bytes decoded from base64."""

    url: str | None
    data: bytes | None


def load_answer(body: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx body.

    Raises:
        ResponseError: the body is not JSON, or not a JSON object.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ResponseError(
            f"the service answered 2xx with a body that is not JSON ({len(body)} bytes)"
        ) from None
    if not isinstance(payload, dict):
        raise ResponseError("the service answered 2xx with JSON that is not an object")
    return payload


def parse_usage(payload: dict[str, Any]) -> Usage | None:
    """`meta.usage` when it holds a usable cost (`usd_spent` a number >= 0), else None."""
    meta = payload.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if not isinstance(usage, dict):
        return None
    credits, usd = usage.get("credits_used"), usage.get("usd_spent")
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not 0 <= usd < float("inf"):
        return None
    if isinstance(credits, bool) or not isinstance(credits, (int, float)):
        credits = 0.0
    return Usage(credits_used=float(credits), usd_spent=float(usd))


def _decode_b64(text: str) -> bytes | None:
    """Base64 as providers write it: line breaks and spaces allowed, a `data:` URI prefix too."""
    match = _DATA_URI.match(text.strip())
    if match is not None:
        text = text.strip()[match.end() :]
    try:
        raw = _WHITESPACE.sub(b"", text.encode("ascii"))
        raw += b"=" * (-len(raw) % 4)  # missing padding is common and harmless
        return base64.b64decode(raw, validate=True) or None
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _ref(entry: object) -> ImageRef | None:
    if not isinstance(entry, dict):
        return None
    b64, url = entry.get("b64_json"), entry.get("url")
    if isinstance(b64, str) and b64.strip():
        decoded = _decode_b64(b64)
        if decoded is not None:
            return ImageRef(None, decoded)
    if isinstance(url, str) and url.startswith("data:"):
        decoded = _decode_b64(url)
        return ImageRef(None, decoded) if decoded is not None else None
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return ImageRef(url, None)
    return None


def image_refs(payload: dict[str, Any]) -> list[ImageRef]:
    """Every usable image of `data`, in order (unusable entries beside usable ones are skipped).

    Raises:
        ResponseError: `data` is missing or empty, or holds no usable image.
    """
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise ResponseError("the answer holds no images ('data' is missing or empty)")
    refs = [ref for ref in map(_ref, data) if ref is not None]
    if refs:
        return refs
    first = data[0]
    if not isinstance(first, dict):
        raise ResponseError("the answer's first image is not an object")
    if isinstance(first.get("b64_json"), str) and first["b64_json"]:
        raise ResponseError("the answer's b64_json is not valid base64")
    raise ResponseError("the answer's image has neither a usable url nor b64_json")


def _describe(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc) or type(exc).__name__)[:300]


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an image we accept, reading only its header and checksums.

    Any mode Pillow reads (CMYK, palette, 16-bit, LA, ...) is accepted.

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


def new_generation(
    params: Params,
    *,
    service: str,
    data: bytes,
    url: str | None,
    usage: Usage | None,
    elapsed_s: float,
) -> Generation:
    """A new `Generation` for image bytes of an answer, checked by `inspect_image` first.

    Raises:
        ResponseError: the bytes are not an image we accept.
    """
    image_format, width, height = inspect_image(data)
    created = datetime.now(timezone.utc)
    return Generation(
        id=created.strftime("%Y%m%d-%H%M%S-") + os.urandom(4).hex(),
        params=params,
        service=service,
        created=created,
        width=width,
        height=height,
        image_format=image_format,
        url=url,
        usage=usage,
        elapsed_s=round(elapsed_s, 4),
        data=data,
    )
