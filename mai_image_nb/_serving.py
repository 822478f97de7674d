"""What the package's two HTTP servers (the simulator and the class gateway) share.

A keep-alive HTTP/1.1 handler that routes every method to one `dispatch`, sends headers
and body without Nagle's delay and logs quietly; and the command lines' port argument and
stop signals.
Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["RoutingHandler", "port_number", "stop_on_signals"]


class RoutingHandler(BaseHTTPRequestHandler):
    """One connection's requests, every method (known or not) handed to `dispatch`."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    disable_nagle_algorithm = True  # else headers and body, sent apart, wait for a delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines hold no secret (keys and tokens travel in headers); keep them quiet.
        logging.getLogger(type(self).__module__).debug("%s " + format, self.address_string(), *args)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            setattr(self, "do_" + self.command, self.dispatch)
        return parsed

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
