"""Files that appear whole or not at all, and portable names that stay inside their folder.

Imports nothing from the package but `errors`.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from .errors import ValidationError

__all__ = [
    "MAX_NAME_BYTES",
    "is_reserved_name",
    "safe_filename",
    "slugify",
    "unique_path",
    "write_atomic",
    "write_new_file",
]

MAX_NAME_BYTES = 255
SLUG_MAX_CHARS = 60
MAX_UNIQUE_TRIES = 10_000
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in range(10)}
)


def _fsync_dir(folder: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:  # Windows cannot open a directory; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(target: Path) -> Path:
    stem = target.name[:32]
    return target.with_name(f".{stem}.{secrets.token_hex(6)}.tmp")


def _write_temp(target: Path, data: bytes) -> Path:
    """A new hidden `.tmp` file beside `target` holding `data`, flushed and fsynced."""
    while True:
        temp = _temp_path(target)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(temp, flags, 0o666)  # the umask applies, as for open()
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def save_png(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write PNG `data` at `path` (".png" added when missing), whole or not at all."""
    target = Path(path).expanduser()
    if target.suffix.lower() != ".png":
        target = target.with_name(target.name + ".png")
    write_atomic(target, data)
    return target


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that the file appears whole or not at all.

    A hidden temporary file in the same folder is written, fsynced and renamed over the
    target; the folder is fsynced where the platform allows. The temporary file is removed
    when anything fails.
    """
    target = Path(path)
    temp = _write_temp(target, data)
    try:
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def slugify(text: str, max_chars: int = SLUG_MAX_CHARS) -> str:
    """Lower-case letters and digits joined by single dashes; everything else dropped.

    Control, format (bidi marks), separator and punctuation characters never survive.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch if ch.isalnum() else "-" for ch in folded)
    return re.sub(r"-+", "-", kept).strip("-")[:max_chars].strip("-")


def _fit(stem: str, ext: str, suffix: str = "") -> str:
    """`stem + suffix + "." + ext`, the stem cut so the name is at most 255 bytes."""
    tail = suffix + (f".{ext}" if ext else "")
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip("-") or "image"
    return cut + tail


def is_reserved_name(stem: str) -> bool:
    """True for a Windows device name (CON, NUL, COM1, ...), in any case."""
    return stem.upper() in _WINDOWS_RESERVED


def safe_filename(*parts: str, ext: str = "png") -> str:
    """A portable file name from `parts` (e.g. an id and a prompt) and an extension.

    Never empty, never `.`/`..`, no path separators, no control or bidi characters, never a
    Windows device name (CON, NUL, COM1, ...), at most 255 bytes of UTF-8.
    """
    stem = "-".join(slug for slug in map(slugify, parts) if slug) or "image"
    if is_reserved_name(stem):
        stem += "_"
    clean_ext = "".join(ch for ch in slugify(ext) if ch.isascii() and ch.isalnum())[:16]
    return _fit(stem, clean_ext)


def _check_name(name: str) -> tuple[str, str]:
    """(stem, extension) of a plain file name; anything that could name a folder is refused."""
    plain = Path(name).name == name and not any(c in name for c in "\\\x00")
    if name in ("", ".", "..") or not plain or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValidationError("name", name, f"a plain file name of at most {MAX_NAME_BYTES} bytes")
    stem, dot, ext = name.rpartition(".")
    return (stem, ext) if dot and stem else (name, "")


def _candidates(folder: Path, name: str) -> Iterator[Path]:
    stem, ext = _check_name(name)
    yield folder / _fit(stem, ext)
    for n in range(2, MAX_UNIQUE_TRIES):
        yield folder / _fit(stem, ext, f"-{n}")


def unique_path(folder: str | os.PathLike[str], name: str) -> Path:
    """`folder / name`, or `name-2`, `name-3`, ... : the first that does not exist yet.

    Only a snapshot: use `write_new_file` to create a file that can never overwrite.
    """
    for candidate in _candidates(Path(folder), name):
        if not os.path.lexists(candidate):
            return candidate
    raise FileExistsError(f"no free name like {name!r} in {folder}")


def write_new_file(folder: str | os.PathLike[str], name: str, data: bytes) -> Path:
    """Create a new file in `folder` named like `name` (adding -2, -3, ...); never overwrites.

    The file appears whole: it is written to a temporary file and hard-linked to a name
    that must not exist (or, where links are not supported, the name is claimed with
    O_EXCL first). Returns the path written.
    """
    base = Path(folder)
    _check_name(name)  # before anything is written
    candidates = _candidates(base, name)
    temp = _write_temp(base / name, data)
    try:
        for candidate in candidates:
            try:
                os.link(temp, candidate)
            except FileExistsError:
                continue
            except (OSError, NotImplementedError):
                claimed = _claim(candidate, candidates)
                temp.replace(claimed)
                _fsync_dir(base)
                return claimed
            _fsync_dir(base)
            return candidate
        raise FileExistsError(f"no free name like {name!r} in {base}")
    finally:
        temp.unlink(missing_ok=True)


def _claim(first: Path, rest: Iterator[Path]) -> Path:
    for candidate in itertools.chain((first,), rest):
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name like {first.name!r} in {first.parent}")
