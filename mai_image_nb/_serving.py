"""HTTP/1.x plumbing the package's two servers (the simulator and the class gateway) share.

A keep-alive HTTP/1.1 handler that routes every method to one `dispatch`, sends headers
and body without Nagle's delay and logs quietly; the command lines' port argument and stop
signals; and the answer class the gateway reads its upstream's answers with.

The common head (HTTP/1.x, plain `Name: value` lines, already in the read buffer) is parsed
here directly, a request's by the handler and an answer's by `QuickResponse`: the standard
library parses headers through the `email` package, which costs about 0.15 ms each way, a
tenth of what the class gateway may add to a request. Anything else (folded or odd lines,
`Expect`, 1xx answers, a head split across packets) is left to the standard library, so
behaviour is the same; tests hold each pair of parsers equal.
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["QuickResponse", "RoutingHandler", "port_number", "stop_on_signals"]

_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
_MAX_HEADERS = 100  # as http.client's limit
_FINAL_STATUS = re.compile(rb"[2-9][0-9][0-9]")  # 1xx answers are left to the standard library


class RoutingHandler(BaseHTTPRequestHandler):
    """One connection's requests, every method (known or not) handed to `dispatch`."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    disable_nagle_algorithm = True  # else headers and body, sent apart, wait for a delayed ACK
    raw_requestline: bytes  # set by handle_one_request before parse_request

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines hold no secret (keys and tokens travel in headers); keep them quiet.
        logging.getLogger(type(self).__module__).debug("%s " + format, self.address_string(), *args)

    def parse_request(self) -> bool:
        parsed = self._parse_plain_request() or super().parse_request()
        if parsed:
            setattr(self, "do_" + self.command, self.dispatch)
        return parsed

    def _parse_plain_request(self) -> bool:
        """Parse the common head as the standard library would, or leave it (False) unread."""
        words = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        if len(words) != 3 or words[2] not in _VERSIONS or not words[0].isalpha():
            return False
        peek = getattr(self.rfile, "peek", None)
        if peek is None:
            return False
        head = _head_at_start(peek(65536))
        if head is None:
            return False
        headers = _plain_fields(head, self.MessageClass)
        if headers is None or "Expect" in headers:
            return False  # odd lines, or 100-continue: the standard library's way
        self.rfile.read(len(head) + 2)  # the head and the blank line after it
        command, path, version = (word.decode("iso-8859-1") for word in words)
        self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
        self.command, self.request_version, self.headers = command, version, headers
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        connection = headers.get("Connection", "").lower()
        keep = version == "HTTP/1.1" and self.protocol_version >= "HTTP/1.1"
        if connection == "close":
            keep = False
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            keep = True
        self.close_connection = not keep
        return True

    def dispatch(self) -> None:
        """Answer the request just parsed (a subclass's job: 404/405 for what it lacks)."""
        raise NotImplementedError


def _head_at_start(buffered: bytes) -> bytes | None:
    """The header lines at the start of `buffered`, each with its CRLF, without the blank
    line that ends them; None if that blank line is not in `buffered` yet."""
    if buffered.startswith(b"\r\n"):
        return b""  # no headers at all
    blank = buffered.find(b"\r\n\r\n")
    return None if blank < 0 else buffered[: blank + 2]


def _plain_fields(head: bytes, message_class: Any) -> Any:
    """`head`'s lines as `message_class` (an `http.client.HTTPMessage`), or None if any line
    is not a plain `Name: value` (the standard library then reads the head its own way)."""
    lines = head.split(b"\r\n")[:-1]
    if len(lines) > _MAX_HEADERS:
        return None
    headers = message_class()
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name) or b"\r" in value or b"\n" in value:
            return None
        # As `headers[name] = value` stores it (no policy of http.client's changes a value).
        headers.set_raw(name.decode("ascii"), value.lstrip(b" \t").decode("iso-8859-1"))
    return headers


class QuickResponse(http.client.HTTPResponse):
    """`http.client`'s answer with its common head parsed directly (set it as a connection's
    `response_class`); any other head goes through `HTTPResponse.begin` unchanged."""

    def begin(self) -> None:
        if self.headers is None and self._begin_plain():
            return
        super().begin()

    def _begin_plain(self) -> bool:
        """Read a final answer's plain head as `HTTPResponse.begin` would; else read nothing."""
        buffered: bytes = self.fp.peek(65536)  # waits for the answer's first bytes
        end = buffered.find(b"\r\n")
        words = buffered[: max(end, 0)].split(b" ", 2)
        if (
            len(words) != 3
            or words[0] not in _VERSIONS
            or not _FINAL_STATUS.fullmatch(words[1])
            or b"\n" in words[2]
        ):
            return False  # no whole status line yet, 1xx, or unusual: the standard library's
        head = _head_at_start(buffered[end + 2 :])
        headers = None if head is None else _plain_fields(head, http.client.HTTPMessage)
        if head is None or headers is None:
            return False
        self.fp.read(end + 2 + len(head) + 2)
        status = int(words[1])
        self.code = self.status = status
        self.reason = words[2].decode("iso-8859-1").strip()
        self.version = 11 if words[0] == b"HTTP/1.1" else 10
        self.headers = self.msg = headers
        # From here on, as HTTPResponse.begin decides the body's framing.
        encoding = headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                pass
            else:
                if self.length < 0:
                    self.length = None
        if status in (204, 304) or self._method == "HEAD":  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
        return True


def port_number(text: str) -> int:
    """`--port`: a TCP port, 0 to let the system pick one."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def stop_on_signals() -> threading.Event:
    """An event that SIGINT or SIGTERM sets, for a command line serving until stopped.

    Both are set (when called from the main thread): a shell that starts a server in the
    background leaves SIGINT ignored, and a service manager sends SIGTERM.
    """
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    return stop
