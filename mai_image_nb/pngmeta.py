"""PNG text chunks that carry a generation's parameters: writing them and reading them back.

Reading treats every PNG as untrusted: chunks are parsed from a stream, pixels are never
decoded, and at most `TEXT_LIMIT_BYTES` of text is read. No widgets, no network here.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import IO, Any

from PIL import Image

from . import display
from ._version import __version__
from .errors import MaiImageError, ValidationError

__all__ = [
    "KEYWORD",
    "TEXT_LIMIT_BYTES",
    "NotOurImageError",
    "embed_params",
    "read_record",
]

KEYWORD = "mai_image_nb"
TEXT_LIMIT_BYTES = 1024 * 1024  # all text read from one untrusted PNG, compressed or not
MAX_CHUNKS_BEFORE_PIXELS = 4096  # a file of millions of tiny chunks is refused, not walked
TITLE_MAX_CHARS = 80

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
_PIXEL_TYPES = (b"IDAT", b"IEND")
_KEYWORD_PEEK = 80  # a PNG keyword is 1-79 bytes, then NUL
_STANDARD_KEYWORDS = ("Title", "Description", "Software", "Creation Time")
_OUR_KEYWORDS = frozenset(k.encode("latin-1") for k in (KEYWORD, *_STANDARD_KEYWORDS))
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"BM", "a BMP image"),
)

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


# -- writing -----------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _itxt(keyword: str, text: str) -> bytes:
    # keyword NUL, compression flag 0, method 0, empty language NUL, empty translation NUL, text
    body = keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    return _chunk(b"iTXt", body)


def _split_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) for each chunk of a PNG held in memory, up to IEND."""
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(png):
            break
        chunks.append((kind, png[pos:end]))
        pos = end
        if kind == b"IEND":
            return chunks
    raise ValidationError("data", f"{len(png)} bytes", "a complete PNG (this one is truncated)")


def _creation_time(created: object) -> str:
    """The PNG "Creation Time" (an RFC 1123 date) of an ISO `created`, else of now."""
    moment = datetime.now(timezone.utc)
    if isinstance(created, str):
        try:
            moment = datetime.fromisoformat(created)
        except ValueError:
            return created
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def _to_png(data: bytes) -> bytes:
    """The bytes themselves when already PNG; JPEG or WebP decoded and encoded once."""
    if data.startswith(PNG_SIGNATURE):
        return data
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "WEBP"):
                raise ValidationError("data", image.format, "PNG, JPEG or WebP image bytes")
            image.load()
            converted: Image.Image = image
            if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):  # e.g. CMYK JPEG
                converted = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            out = io.BytesIO()
            converted.save(out, format="PNG")
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            "data", f"{len(data)} bytes", "PNG, JPEG or WebP image bytes"
        ) from exc
    return out.getvalue()


def embed_params(data: bytes, record: Mapping[str, Any]) -> bytes:
    """A PNG of `data` carrying `record` (a `Generation.to_dict()`) in UTF-8 iTXt chunks.

    Our key holds the record as JSON; Title, Description, Software and Creation Time let
    ordinary viewers show the prompt. A PNG keeps its pixel chunks byte for byte (the text
    goes before the first IDAT, where readers find it without touching pixels); JPEG and
    WebP are decoded and encoded to PNG once. Only what is in `record` is written.

    Raises:
        ValidationError: `data` is not a PNG, JPEG or WebP image.
    """
    png = _to_png(bytes(data))
    prompt = str(record.get("prompt", "")).replace("\x00", "")
    texts = [
        (KEYWORD, json.dumps(dict(record), ensure_ascii=False, separators=(",", ":"))),
        ("Title", display.short_prompt(prompt, TITLE_MAX_CHARS)),
        ("Description", prompt),
        ("Software", f"mai_image_nb {__version__} · {record.get('model', '')}".strip()),
        ("Creation Time", _creation_time(record.get("created"))),
    ]
    new_chunks = b"".join(_itxt(keyword, text) for keyword, text in texts)
    out = [PNG_SIGNATURE]
    inserted = False
    for kind, raw in _split_chunks(png):
        if kind in _TEXT_TYPES and raw[8:].split(b"\x00", 1)[0] in _OUR_KEYWORDS:
            continue  # replaced by ours
        if kind in _PIXEL_TYPES and not inserted:
            out.append(new_chunks)
            inserted = True
        out.append(raw)
    return b"".join(out)


# -- reading (untrusted) -----------------------------------------------------------------


class NotOurImageError(ValidationError):
    """A file or bytes without this toolkit's parameters (a ValidationError), built whole."""

    def __init__(self, source: str, reason: str, kind: str = "a PNG") -> None:
        allowed = f"{kind} written by mai_image_nb"
        MaiImageError.__init__(self, f"{source} is not {allowed}: {reason}")
        self.field = "image"
        self.value = source
        self.allowed = allowed


def _not_ours(source: str, reason: str) -> ValidationError:
    return NotOurImageError(source, reason)


class _TextReader:
    """Walks the chunks before the pixels, reading only our keyword's text, within a budget."""

    def __init__(self, stream: IO[bytes], source: str) -> None:
        self.stream = stream
        self.source = source
        self.budget = TEXT_LIMIT_BYTES

    def _read(self, n: int, what: str) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise _not_ours(self.source, f"the file is truncated ({what})")
        return data

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise _not_ours(self.source, f"its text is larger than {TEXT_LIMIT_BYTES} bytes")

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        head = self.stream.read(len(PNG_SIGNATURE))
        if head != PNG_SIGNATURE:
            kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
            if kind is None and head[:4] == b"RIFF":
                kind = "a RIFF/WebP file"
            raise _not_ours(self.source, f"it is {kind}" if kind else "it is not a PNG file")
        for count in range(MAX_CHUNKS_BEFORE_PIXELS):
            length, kind = struct.unpack(">I4s", self._read(8, "chunk header"))
            if length > 0x7FFFFFFF or not kind.isalpha():
                raise _not_ours(self.source, "its chunk structure is damaged")
            if count == 0 and kind != b"IHDR":
                raise _not_ours(self.source, "it does not start with an IHDR chunk")
            if kind in _PIXEL_TYPES:
                return
            yield kind, length
        raise _not_ours(self.source, f"it has more than {MAX_CHUNKS_BEFORE_PIXELS} chunks")

    def skip(self, n: int) -> None:
        self.stream.seek(n, io.SEEK_CUR)

    def our_text(self) -> str:
        for kind, length in self.chunks():
            if kind not in _TEXT_TYPES:
                self.skip(length + 4)
                continue
            peek = min(length, _KEYWORD_PEEK)
            self._spend(peek)
            start = self._read(peek, "text chunk")
            keyword = start.split(b"\x00", 1)[0]
            if keyword != KEYWORD.encode("latin-1") or b"\x00" not in start:
                self.skip(length - peek + 4)
                continue
            self._spend(length - peek)
            body = start + self._read(length - peek, "text chunk")
            (crc,) = struct.unpack(">I", self._read(4, "chunk checksum"))
            if zlib.crc32(body, zlib.crc32(kind)) != crc:
                raise _not_ours(self.source, "its parameters chunk is damaged (bad CRC)")
            return self._decode(kind, body[len(keyword) + 1 :])
        raise _not_ours(self.source, f"it has no {KEYWORD!r} text chunk")

    def _inflate(self, data: bytes) -> bytes:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, self.budget + 1)
        except zlib.error as exc:
            raise _not_ours(self.source, "its compressed text is damaged") from exc
        self._spend(len(out))
        if not inflater.eof:
            raise _not_ours(self.source, "its compressed text is damaged or truncated")
        return out

    def _decode(self, kind: bytes, rest: bytes) -> str:
        try:
            if kind == b"tEXt":
                return rest.decode("latin-1")
            if kind == b"zTXt":
                return self._inflate(rest[1:]).decode("latin-1")
            compressed, _method = rest[0], rest[1]
            _language, _translated, text = rest[2:].split(b"\x00", 2)
            raw = self._inflate(text) if compressed else text
            return raw.decode("utf-8")
        except ValidationError:
            raise
        except (IndexError, ValueError) as exc:  # missing NULs, bad UTF-8
            raise _not_ours(self.source, "its parameters chunk is malformed") from exc


def read_record(path_or_bytes: Source) -> dict[str, Any]:
    """The whole record stored by `embed_params` (see `Generation.to_dict()`).

    Safe on untrusted files: streams the chunks before the pixels, never decodes pixels,
    reads at most `TEXT_LIMIT_BYTES` of text (decompression capped too).

    Raises:
        ValidationError: not a PNG, truncated, damaged, no parameters chunk, bad JSON,
            too much text.
        OSError: the path cannot be opened.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        source = f"<{len(path_or_bytes)} bytes>"
        with io.BytesIO(path_or_bytes) as stream:
            text = _TextReader(stream, source).our_text()
    else:
        path = Path(path_or_bytes)
        source = repr(str(path))
        with path.open("rb") as stream:
            text = _TextReader(stream, source).our_text()
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _not_ours(source, "its parameters are not valid JSON") from exc
    if not isinstance(record, dict):
        raise _not_ours(source, "its parameters are not a JSON object")
    return record
