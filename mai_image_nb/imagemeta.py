"""A generation's parameters inside PNG, JPEG and WebP files: writing, reading, saving by suffix.

PNG keeps them in iTXt chunks (`pngmeta.py`); JPEG and WebP in an XMP packet whose
`mai:record` element holds the same JSON record. Reading treats every file as untrusted:
JPEG segments and WebP chunks are walked by their headers (pixels never decoded, whatever
size the file claims), and the XMP is searched as text (no XML parser) within a size cap.
"""

from __future__ import annotations

import errno
import html
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from PIL import Image

from . import pngmeta
from ._files import safe_filename, write_atomic
from ._version import __version__
from .errors import ValidationError
from .params import GENERATE_FIELDS, validate_params

__all__ = ["SAVE_FORMATS", "embed_record", "read_params", "read_record", "save_image"]

# Suffix -> Pillow format; no suffix means PNG.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Image suffixes we cannot embed parameters in: refused rather than written as a mislabelled PNG.
_OTHER_IMAGE_SUFFIXES = frozenset({".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".ico"})
JPEG_QUALITY = 95
_RECORD = re.compile(rb"<mai:record>([^<]*)</mai:record>")
_XMP_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:mai="https://pypi.org/project/mai-image-nb/">'
    '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>'
    '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{prompt}</rdf:li></rdf:Alt>'
    "</dc:description><xmp:CreatorTool>{software}</xmp:CreatorTool>"
    "<mai:record>{record}</mai:record>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)


def _xmp(record: Mapping[str, Any]) -> bytes:
    prompt = str(record.get("prompt", ""))
    text = _XMP_TEMPLATE.format(
        title=html.escape(prompt[: pngmeta.TITLE_MAX_CHARS]),
        prompt=html.escape(prompt),
        software=html.escape(f"mai_image_nb {__version__} · {record.get('model', '')}"),
        record=html.escape(json.dumps(dict(record), ensure_ascii=False, separators=(",", ":"))),
    )
    return text.encode("utf-8")


def _for_format(image: Image.Image, image_format: str) -> Image.Image:
    """`image` in a mode `image_format` can store (CMYK, palette, 16-bit, LA converted)."""
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image_format == "JPEG":
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    return image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if has_alpha else "RGB")


def embed_record(data: bytes, record: Mapping[str, Any], image_format: str = "PNG") -> bytes:
    """`data` (PNG, JPEG or WebP bytes) as `image_format`, carrying `record`.

    PNG keeps its pixel chunks byte for byte; JPEG from JPEG keeps its quantisation
    tables; anything else is decoded once and encoded (WebP losslessly from PNG).

    Raises:
        ValidationError: `data` is not an image Pillow can read, or the format is unknown.
    """
    if image_format == "PNG":
        return pngmeta.embed_params(data, record)
    if image_format not in ("JPEG", "WEBP"):
        raise ValidationError("format", image_format, "PNG, JPEG or WEBP")
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            same_jpeg = source.format == "JPEG" and image_format == "JPEG"
            lossless = source.format == "PNG" and image_format == "WEBP"
            image = _for_format(source, image_format)
            out = io.BytesIO()
            options: dict[str, Any] = {"xmp": _xmp(record)}
            if image_format == "JPEG":
                keep = same_jpeg and image is source
                options["quality"] = "keep" if keep else JPEG_QUALITY
            else:
                options["lossless"] = lossless
                options["quality"] = 100 if lossless else JPEG_QUALITY
            image.save(out, format=image_format, **options)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationError("data", f"{len(data)} bytes", "PNG, JPEG or WebP bytes") from exc
    return out.getvalue()


def _target(path: str | os.PathLike[str], default_name: str) -> tuple[Path, str]:
    raw = os.fspath(path)
    target = Path(raw).expanduser()
    if raw.endswith(("/", os.sep)) or target.is_dir():
        target = target / default_name
    suffix = target.suffix.lower()
    if suffix in _OTHER_IMAGE_SUFFIXES:
        raise ValidationError(
            "path", raw, "a file name ending in .png, .jpg, .jpeg or .webp (or no suffix)"
        )
    if suffix not in SAVE_FORMATS:
        target = target.with_name(target.name + ".png")
        suffix = ".png"
    return target, SAVE_FORMATS[suffix]


def save_image(
    path: str | os.PathLike[str], data: bytes, record: Mapping[str, Any], *, name: Sequence[str]
) -> Path:
    """Write `data` at `path` in the format its suffix names, carrying `record`; whole or not.

    A folder (existing, or a path ending in "/") gets a PNG named from the `name` parts;
    missing parent folders are created. Errors name `path`, never the temporary file.

    Raises:
        ValidationError: the suffix names an image format other than PNG, JPEG or WebP.
        OSError: the file cannot be written (the message names the target path).
    """
    target, image_format = _target(path, safe_filename(*name, ext="png"))
    encoded = embed_record(data, record, image_format)
    blocker = next((p for p in target.parents if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"could not save {target}: {blocker} is a file, not a folder"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, encoded)
    except OSError as exc:
        raise type(exc)(exc.errno, f"could not save {target}: {exc.strerror}") from None
    return target


def _record_from_xmp(xmp: bytes, source: str) -> dict[str, Any]:
    if len(xmp) > pngmeta.TEXT_LIMIT_BYTES:
        raise _not_ours(source, f"its XMP is larger than {pngmeta.TEXT_LIMIT_BYTES} bytes")
    match = _RECORD.search(xmp)
    if match is None:
        raise _not_ours(source, "its XMP holds no mai:record")
    try:
        record = json.loads(html.unescape(match.group(1).decode("utf-8")))
    except (ValueError, RecursionError) as exc:
        raise _not_ours(source, "its parameters are not valid JSON") from exc
    if not isinstance(record, dict):
        raise _not_ours(source, "its parameters are not a JSON object")
    return record


def _not_ours(source: str, reason: str) -> ValidationError:
    return pngmeta.NotOurImageError(source, reason, "a PNG, JPEG or WebP")


def read_record(path_or_bytes: pngmeta.Source) -> dict[str, Any]:
    """The record embedded by `embed_record` in a PNG, JPEG or WebP (pixels never decoded).

    Raises:
        ValidationError: not one of these formats, or without our parameters.
        OSError: the path cannot be opened.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        head = bytes(path_or_bytes[:12])
        source = f"<{len(path_or_bytes)} bytes>"
    else:
        with Path(path_or_bytes).open("rb") as file:
            head = file.read(12)
        source = repr(str(Path(path_or_bytes)))
    is_jpeg = head.startswith(b"\xff\xd8\xff")
    is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if not (is_jpeg or is_webp):
        return pngmeta.read_record(path_or_bytes)
    stream: IO[bytes]
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        stream = io.BytesIO(bytes(path_or_bytes))
    else:
        stream = Path(path_or_bytes).open("rb")  # noqa: SIM115 - closed by the with below
    with stream:
        xmp = _webp_xmp(stream, source) if is_webp else _jpeg_xmp(stream, source)
    if xmp is None:
        raise _not_ours(source, "it has no XMP metadata")
    return _record_from_xmp(xmp, source)


def _webp_xmp(stream: IO[bytes], source: str) -> bytes | None:
    """The XMP chunk of a WebP, walking RIFF chunk headers (pixels and other chunks skipped)."""
    stream.seek(12)
    for _ in range(pngmeta.MAX_CHUNKS_BEFORE_PIXELS):
        header = stream.read(8)
        if len(header) < 8:
            return None
        kind, size = header[:4], int.from_bytes(header[4:], "little")
        if kind == b"XMP ":
            if size > pngmeta.TEXT_LIMIT_BYTES:
                raise _not_ours(source, f"its XMP is larger than {pngmeta.TEXT_LIMIT_BYTES} bytes")
            return stream.read(size)
        stream.seek(size + (size & 1), io.SEEK_CUR)
    raise _not_ours(source, f"it has more than {pngmeta.MAX_CHUNKS_BEFORE_PIXELS} chunks")


_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def _jpeg_xmp(stream: IO[bytes], source: str) -> bytes | None:
    """The XMP APP1 segment of a JPEG, walking marker segments up to the scan (no pixels)."""
    stream.seek(2)
    for _ in range(pngmeta.MAX_CHUNKS_BEFORE_PIXELS):
        marker = stream.read(2)
        while marker[:1] == b"\xff" and marker[1:] == b"\xff":  # fill bytes
            marker = marker[1:] + stream.read(1)
        if len(marker) < 2 or marker[0] != 0xFF or marker[1] in (0xD9, 0xDA):
            return None  # end of image, start of scan, or not a marker: no XMP before pixels
        length = int.from_bytes(stream.read(2), "big")
        if length < 2:
            raise _not_ours(source, "its JPEG structure is damaged")
        if marker[1] == 0xE1 and length - 2 > len(_XMP_APP1):
            head = stream.read(len(_XMP_APP1))
            if head == _XMP_APP1:
                return stream.read(length - 2 - len(_XMP_APP1))
            stream.seek(length - 2 - len(head), io.SEEK_CUR)
        else:
            stream.seek(length - 2, io.SEEK_CUR)
    raise _not_ours(source, f"it has more than {pngmeta.MAX_CHUNKS_BEFORE_PIXELS} segments")


def read_params(path_or_bytes: pngmeta.Source) -> dict[str, Any]:
    """The keyword arguments of `Client.generate()` stored in a PNG, JPEG or WebP of ours.

    `prompt`, `aspect_ratio`, `temperature`, `sample`, and the token limits when they were
    set; re-validated, so a tampered file cannot smuggle a bad value.

    Raises:
        ValidationError: as `read_record`, or a stored value that is not allowed.
        OSError: the path cannot be opened.
    """
    record = read_record(path_or_bytes)
    if "prompt" not in record:
        raise pngmeta.NotOurImageError("this image", "its parameters have no prompt")
    params = validate_params(**{f: record[f] for f in GENERATE_FIELDS if f in record})
    return params.generate_kwargs()
