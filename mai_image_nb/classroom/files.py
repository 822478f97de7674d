"""The class folder's small files: `tokens.csv`, `admin-token` and `url`.

Secrets are written private (mode 0600) from the first byte, whole, and atomically: a
temporary file is filled, fsynced and renamed over the old one, so a reader (or a crash)
sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
from pathlib import Path

__all__ = [
    "ADMIN_TOKEN_FILE",
    "LEDGER_FILE",
    "TOKENS_FILE",
    "TOKEN_BYTES",
    "URL_FILE",
    "FolderLock",
    "load_or_make_admin_token",
    "new_token",
    "read_tokens",
    "write_private",
    "write_tokens",
]

TOKENS_FILE = "tokens.csv"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
URL_FILE = "url"
LEDGER_FILE = "ledger.sqlite3"
LOCK_FILE = "gateway.lock"
TOKEN_BYTES = 24  # 192 random bits, URL-safe text of 32 characters


def new_token() -> str:
    """A fresh random token (192 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def write_private(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace `path` with `text` atomically; the file is created with `mode` (never wider)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)  # the umask may have narrowed it; never widen beyond `mode`
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_tokens(folder: Path) -> dict[str, str]:
    """name -> token from `tokens.csv` ({} when there is none yet)."""
    path = folder / TOKENS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    rows = list(csv.reader(io.StringIO(text)))
    return {row[0]: row[1] for row in rows[1:] if len(row) >= 2 and row[0]}


def write_tokens(folder: Path, tokens: dict[str, str]) -> None:
    """Write `tokens.csv` whole: a header `name,token`, then a row per student (mode 0600)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "token"])
    for name, token in tokens.items():
        writer.writerow([name, token])
    write_private(folder / TOKENS_FILE, out.getvalue())


def load_or_make_admin_token(folder: Path) -> str:
    """The class's admin token from `admin-token`, made (mode 0600) on first use."""
    path = folder / ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if len(token) < 22:  # missing, or too short to be one we made
        token = new_token()
        write_private(path, token + "\n")
    return token


class FolderLock:
    """One gateway per class folder: an exclusive lock on `gateway.lock`, held while serving.

    Two gateways on one ledger would each settle the other's open requests as crashed. The
    operating system drops the lock when the process dies, kill -9 included.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises MaiImageError when another gateway holds the folder."""
        from mai_image_nb.errors import MaiImageError

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; one gateway is the teacher's job
            self._fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise MaiImageError(
                f"the class folder {self.path.parent} is in use by another gateway; "
                "stop that one first (one gateway per folder)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
