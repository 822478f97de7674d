"""What the reliability tests look at: this process's sockets, files and threads; HTML structure.

Read from /proc (Linux), so a leak is seen as the kernel sees it, not as Python reports it.
"""

from __future__ import annotations

import os
import threading
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "HtmlShape",
    "client_sockets_to",
    "html_shape",
    "open_fds",
    "thread_idents",
]

_TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_FD_DIR = Path("/proc/self/fd")


def open_fds() -> dict[int, str]:
    """Every open file descriptor of this process and what it points at."""
    found: dict[int, str] = {}
    for entry in os.listdir(_FD_DIR):
        try:
            found[int(entry)] = os.readlink(_FD_DIR / entry)
        except OSError:  # the descriptor listdir itself used, already closed
            continue
    return found


def _tcp_by_inode() -> dict[str, tuple[int, int, str]]:
    """socket inode -> (local port, remote port, state as hex) for every TCP socket."""
    table: dict[str, tuple[int, int, str]] = {}
    for path in _TCP_TABLES:
        if not path.exists():
            continue
        for line in path.read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            table[inode] = (
                int(local.rsplit(":", 1)[1], 16),
                int(remote.rsplit(":", 1)[1], 16),
                state,
            )
    return table


def client_sockets_to(port: int) -> list[str]:
    """This process's TCP sockets whose far end is `port`: connections a client still holds."""
    table = _tcp_by_inode()
    held = []
    for fd, target in open_fds().items():
        if target.startswith("socket:["):
            entry = table.get(target[len("socket:[") : -1])
            if entry is not None and entry[1] == port:
                held.append(f"fd {fd}: local port {entry[0]}, state {entry[2]}")
    return held


def thread_idents() -> dict[int, str]:
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}


HtmlShape = list[tuple[str, tuple[str, ...]]]


class _ShapeParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: HtmlShape = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append((tag, tuple(name for name, _ in attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def html_shape(markup: str) -> tuple[HtmlShape, str]:
    """(every start tag with its attribute names, in order; the visible text) of `markup`."""
    parser = _ShapeParser()
    parser.feed(markup)
    parser.close()
    return parser.shape, "".join(parser.texts)
