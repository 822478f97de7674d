"""The simulator's HTTP side: connection threads, routing, bodies, and each answer's bytes.

It reaches the state it reads and changes (faults, records, images, charges) only through
`SimulatorBackend`, a Protocol that `OfflineServer` (server.py) implements with public methods.
Never imports server.py, requests or ipywidgets.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from mai_image_nb._serving import RoutingHandler

from . import faults as fl
from .faults import Fault
from .schema import GENERATIONS_PATH, RecordedRequest, validate_body

__all__ = [
    "IDLE_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "STREAM_CHUNK_BYTES",
    "Handler",
    "ServedFile",
    "SimulatorBackend",
    "TrackedHTTPServer",
]

log = logging.getLogger("mai_image_nb.offline")

MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT_S = 60.0  # a keep-alive connection silent this long is closed
STREAM_CHUNK_BYTES = 64 * 1024
_FILE_RE = re.compile(r"^/files/([A-Za-z0-9_-]{1,64})\.png$")
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class ServedFile:
    """An image the server serves: `data`, then zeros up to `size` bytes (for huge bodies)."""

    data: bytes
    size: int
    content_type: str = "image/png"


class SimulatorBackend(Protocol):
    """What the HTTP side asks of the simulation behind it; `OfflineServer` is the one in use.

    The handler threads call these concurrently: each must be safe to call from any thread.
    """

    @property
    def port(self) -> int:
        """The bound port (names the connection threads)."""
        ...

    @property
    def latency_s(self) -> float:
        """Seconds every POST answer waits first."""
        ...

    @property
    def response_format(self) -> str:
        """How images are answered: "url" or "b64_json"."""
        ...

    def connection_opened(self, sock: Any, thread: threading.Thread) -> None:
        """Track a new connection and the thread serving it (so closing can join it)."""

    def connection_closed(self, sock: Any) -> None:
        """Forget a connection whose thread is ending."""

    def handler_failed(self, exc: BaseException) -> None:
        """Keep an exception raised inside a handler (tests re-raise it)."""

    def record_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, sock: Any
    ) -> RecordedRequest:
        """Record a request as received on connection `sock`; returns the record."""
        ...

    def next_fault(self) -> Fault | None:
        """The fault the next POST answers with, or None to answer normally."""

    def pause(self, seconds: float) -> bool:
        """Wait `seconds`; False when the simulation closes meanwhile."""
        ...

    def is_authorised(self, header: str | None) -> bool:
        """Whether an `Authorization` header value carries the key required (if any)."""
        ...

    def usage(self) -> dict[str, Any]:
        """The `meta.usage` of one image."""
        ...

    def count_reported_usd(self, usd: float) -> None:
        """Add `usd` (negative: take back) to what answers sent whole have reported."""

    def render(self, body: dict[str, Any]) -> bytes:
        """The PNG for a valid generations body."""
        ...

    def publish_image(self, file: ServedFile) -> str:
        """Keep an image to serve at /files/<id>.png (here or on the image server); its id."""
        ...

    def find_image(self, file_id: str) -> ServedFile | None:
        """A published image still kept, or None."""

    def image_url(self, file_id: str, host_header: str) -> str:
        """The URL a client fetches image `file_id` at, given the Host it reached us by."""
        ...


class TrackedHTTPServer(ThreadingHTTPServer):
    """Serves each connection on a thread its backend tracks, so closing can join it."""

    daemon_threads = True
    request_queue_size = 128  # a class (or a gateway) connecting at once; the default is 5

    def __init__(self, owner: SimulatorBackend, address: tuple[str, int]) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Our own threads, tracked, so close() can wake and join every one of them.
        thread = threading.Thread(
            target=self._process, args=(request, client_address), daemon=True,
            name=f"offline-server-{self.owner.port}-conn",
        )  # fmt: skip
        self.owner.connection_opened(request, thread)
        thread.start()

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.owner.connection_closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE) or exc is None:
            log.debug("client %s went away: %r", client_address, exc)
        else:
            self.owner.handler_failed(exc)


class Handler(RoutingHandler):
    """One connection's requests: route, read the body, answer normally or as a fault says."""

    server_version = "mai-image-offline/1.0"
    timeout = IDLE_TIMEOUT_S
    server: TrackedHTTPServer

    def dispatch(self) -> None:
        """Route, read the body, answer (404 or 405 for what the simulator lacks)."""
        owner, self._answered = self.server.owner, False
        try:
            raw = self._read_body()
            if raw is None:
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = owner.record_request(self.command, self.path, headers, raw, self.connection)
            path = urlsplit(self.path).path
            if path == GENERATIONS_PATH:
                if self.command == "POST":
                    self._generate(record)
                else:
                    self._error(405, f"Cannot {self.command} {path}", extra={"Allow": "POST"})
            elif match := _FILE_RE.match(path):
                if self.command in ("GET", "HEAD"):
                    self._serve_file(match.group(1))
                else:
                    self._error(405, f"Cannot {self.command} {path}", extra={"Allow": "GET, HEAD"})
            else:
                self._error(404, f"Cannot {self.command} {path}")
        except _CLIENT_GONE as exc:
            log.debug("client went away: %r", exc)
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - recorded in OfflineServer.errors, re-raised by tests
            owner.handler_failed(exc)
            self.close_connection = True
            if not self._answered:
                self._error(500, "The offline simulator failed; see OfflineServer.errors")

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                size_text = self.rfile.readline(1024).split(b";")[0].strip()
                if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                    self._refuse(400, "Malformed chunked body")
                    return None
                if (size := int(size_text, 16)) == 0:
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    self._refuse(413, "Request body too large")
                    return None
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        length_text = self.headers.get("Content-Length", "0").strip() or "0"
        if not length_text.isdigit():
            self._refuse(400, "Content-Length is not a number")
            return None
        if int(length_text) > MAX_BODY_BYTES:
            self._refuse(413, "Request body too large")
            return None
        return self.rfile.read(int(length_text))

    def _refuse(self, code: int, message: str) -> None:
        self.close_connection = True  # the unread body makes the connection unusable
        self._error(code, message, extra={"Connection": "close"})

    def _send(self, code: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        self._answered = True
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", extra.pop("x-request-id", fl.new_request_id()))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _error(
        self, code: int, message: str, kind: str | None = None, extra: dict[str, str] | None = None
    ) -> None:
        request_id = fl.new_request_id()
        payload = fl.error_payload(code, message, kind or fl.default_kind_and_message(code)[0],
                                   request_id)  # fmt: skip
        self._send(code, fl.dumps(payload), "application/json",
                   {"x-request-id": request_id, **(extra or {})})  # fmt: skip

    def _serve_file(self, file_id: str) -> None:
        found = self.server.owner.find_image(file_id)
        if found is None:
            self._error(404, f"No image {file_id}.png here (unknown, or forgotten)")
            return
        self._answered = True
        self.send_response(200)
        self.send_header("Content-Type", found.content_type)
        self.send_header("Content-Length", str(found.size))
        self.send_header("x-request-id", fl.new_request_id())
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(found.data[: found.size])
        left = found.size - len(found.data)
        zeros = bytes(STREAM_CHUNK_BYTES)
        while left > 0:
            self.wfile.write(zeros[: min(left, STREAM_CHUNK_BYTES)])
            left -= STREAM_CHUNK_BYTES
        self.wfile.flush()

    def _generate(self, record: RecordedRequest) -> None:
        owner = self.server.owner
        fault = owner.next_fault()
        if not owner.pause(owner.latency_s):
            self._hang_up()
        elif fault is not None and fault.preempts:
            self._answer_preemptive(fault)
        elif not owner.is_authorised(self.headers.get("Authorization")):
            message = "Missing or invalid API key: send 'Authorization: Bearer <your key>'"
            self._error(401, message, "err_unauthorized")
        elif problems := (
            validate_body(record.json)
            if record.json is not None
            else ["the body is not valid JSON (UTF-8, no NaN or Infinity)"]
        ):
            self._error(400, "Invalid request body: " + "; ".join(problems), "err_validation")
        elif fault is not None and fault.name == "slow" and not owner.pause(fault.seconds):
            self._hang_up()
        else:
            usage = owner.usage()
            payload = {
                "created": int(time.time() * 1000),
                "data": self._image_item(record.json, fault),
                "meta": {"usage": usage},
            }
            # Counted before the last byte leaves: a client may look as soon as it has it.
            owner.count_reported_usd(usage["usd_spent"])
            try:
                self._send(200, fl.dumps(payload), "application/json", {})
            except _CLIENT_GONE:
                owner.count_reported_usd(-usage["usd_spent"])  # it never arrived whole
                raise

    def _image_item(self, body: dict[str, Any], fault: Fault | None) -> list[Any] | None:
        owner, name = self.server.owner, fault.name if fault is not None else "normal"
        if name == "empty_data":
            return []
        if name == "null_data":
            return None
        if name == "null_image":
            return [{"url": None, "b64_json": None}]
        if name == "bad_base64":
            return [{"b64_json": fl.BAD_BASE64}]
        if name == "bomb":
            assert fault is not None
            return [{"b64_json": _b64(fl.bomb_png(fault.width, fault.height))}]
        if name == "dead_url":
            return [{"url": self._image_url(uuid.uuid4().hex)}]
        if name == "oversized":
            assert fault is not None
            file = ServedFile(fl.png_header(64, 64), fault.n_bytes)
            return [{"url": self._image_url(owner.publish_image(file))}]
        data = fl.NOT_AN_IMAGE if name == "not_an_image" else owner.render(body)
        if owner.response_format == "b64_json":
            return [{"b64_json": _b64(data)}]
        return [{"url": self._image_url(owner.publish_image(ServedFile(data, len(data))))}]

    def _image_url(self, file_id: str) -> str:
        """The image's URL on the CDN server, or on this one as the client reached it."""
        return self.server.owner.image_url(file_id, self.headers.get("Host", ""))

    def _answer_preemptive(self, fault: Fault) -> None:
        if fault.name in ("stall", "drop_connection"):
            self.server.owner.pause(fault.seconds)
            return self._hang_up()
        if fault.name == "body":
            return self._send(fault.status_code, fault.raw, fault.content_type, {})
        if fault.name == "truncated_json":
            payload = {"created": int(time.time() * 1000),
                       "data": [{"url": self._image_url(uuid.uuid4().hex)}],
                       "meta": {"usage": {"credits_used": 0, "usd_spent": 0.0}}}  # fmt: skip
            whole = fl.dumps(payload)
            return self._send(200, whole[: len(whole) // 2], "application/json", {})
        extra = {"Retry-After": fault.retry_after, "retry-after-ms": fault.retry_after_ms}
        headers = {k: v for k, v in extra.items() if v is not None}
        if fault.html:
            page = fl.html_error_page(fault.status_code)
            return self._send(fault.status_code, page, "text/html; charset=utf-8", headers)
        assert fault.message is not None
        return self._error(fault.status_code, fault.message, fault.error_kind, headers)

    def _hang_up(self) -> None:
        """Close the connection without answering (the socket closes when the handler ends)."""
        self._answered = True
        self.close_connection = True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
