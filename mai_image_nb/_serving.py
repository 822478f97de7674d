"""What the package's two HTTP servers (the simulator and the class gateway) share.

A keep-alive HTTP/1.1 handler that routes every method to one `dispatch`, sends headers
and body without Nagle's delay and logs quietly; and the command lines' port argument and
stop signals.

The common request head (HTTP/1.x, plain `Name: value` lines, already in the read buffer) is
parsed here directly; the standard library parses headers through the `email` package, which
costs about 0.15 ms a request, a tenth of what the class gateway adds to each. Anything else
(folded or odd lines, `Expect`, a head split across packets) is left to the standard
library, so behaviour is the same; a test holds the two parsers equal.
Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["RoutingHandler", "port_number", "stop_on_signals"]

_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
_MAX_HEADERS = 100  # as http.client's limit


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
        buffered: bytes = peek(65536)
        if buffered.startswith(b"\r\n"):
            head = b""  # no headers at all
        else:
            blank = buffered.find(b"\r\n\r\n")
            if blank < 0:
                return False  # the head's end is not in the buffer yet
            head = buffered[: blank + 2]  # each header line with its CRLF
        lines = head.split(b"\r\n")[:-1]
        if len(lines) > _MAX_HEADERS:
            return False
        headers = self.MessageClass()
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not _HEADER_NAME.fullmatch(name) or b"\r" in value or b"\n" in value:
                return False
            headers[name.decode("ascii")] = value.lstrip(b" \t").decode("iso-8859-1")
        if "Expect" in headers:
            return False  # 100-continue: the standard library's way
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
