"""The offline simulator: a threaded HTTP/1.1 server playing the provider's image endpoint.

Standard library and Pillow only (through `render`); never requests or ipywidgets.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from . import faults as fl
from .faults import Chaos, Fault
from .render import render_png

__all__ = ["OfflineServer", "RecordedRequest", "validate_body"]

log = logging.getLogger("mai_image_nb.offline")

GENERATIONS_PATH = "/v1/images/generations"
SCHEMA_PATH = Path(__file__).with_name("openapi.json")
MAX_STORED_IMAGES = 256  # least recently used images beyond this are forgotten (their URL 404s)
MAX_RECORDED_REQUESTS = 20_000  # oldest records beyond this are dropped (post_count keeps counting)
MAX_BODY_BYTES = 1024 * 1024
RENDER_CACHE_SIZE = 32  # temperature-0 images are the same every time: keep the last few
IDLE_TIMEOUT_S = 60.0  # a keep-alive connection silent this long is closed
CLOSE_JOIN_S = 5.0
STREAM_CHUNK_BYTES = 64 * 1024
_FILE_RE = re.compile(r"^/files/([A-Za-z0-9_-]{1,64})\.png$")
_HOST_RE = re.compile(r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - compared with, never bound here
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "number": (int, float), "integer": int, "boolean": bool, "object": dict,
    "array": list,
}  # fmt: skip


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (headers keyed in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    time: float
    connection: int = 0  # 1 for the server's first TCP connection, 2 for the next...


@lru_cache(maxsize=1)
def request_schema() -> dict[str, Any]:
    """The JSON schema of the generations body, from the bundled copy of the provider's spec."""
    spec = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    body = spec["paths"][GENERATIONS_PATH]["post"]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return next((n for n, t in _JSON_TYPES.items() if isinstance(value, t)), "unknown")


def _check(name: str, value: object, rule: dict[str, Any]) -> list[str]:
    kind = rule.get("type")
    if value is None:
        return [] if rule.get("nullable") else [f"{name} must be a {kind}, got null"]
    is_type = kind is None or (
        isinstance(value, _JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
    )
    if not is_type:
        article = "an" if kind == "integer" else "a"
        return [f"{name} must be {article} {kind}, got {_type_name(value)}"]
    problems = []
    if "enum" in rule and value not in rule["enum"]:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        allowed = ", ".join(repr(v) for v in rule["enum"])
        problems.append(f"{name} must be one of {allowed} (got {shown})")
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0):
            problems.append(f"{name} must be at least {rule['minLength']} characters long")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            problems.append(
                f"{name} must be at most {rule['maxLength']} characters long (got {len(value)})"
            )
    if isinstance(value, (int, float)):
        if "minimum" in rule and value < rule["minimum"]:
            problems.append(f"{name} must be >= {rule['minimum']} (got {value})")
        if "maximum" in rule and value > rule["maximum"]:
            problems.append(f"{name} must be <= {rule['maximum']} (got {value})")
    return problems


def validate_body(body: object, schema: dict[str, Any] | None = None) -> list[str]:
    """What is wrong with a parsed request body, each problem naming its field; [] when valid.

    Follows JSON Schema as OpenAPI 3.0 reads it: a bool is neither an integer nor a number,
    1.0 is not an integer, null only where `nullable`. Fields the schema does not name are
    ignored, as the provider's schema allows (it does not forbid additional properties).
    """
    schema = schema or request_schema()
    if not isinstance(body, dict):
        return [f"the body must be a JSON object, got {_type_name(body)}"]
    problems = [f"{name} is required" for name in schema.get("required", ()) if name not in body]
    for name, rule in schema.get("properties", {}).items():
        if name in body:
            problems += _check(name, body[name], rule)
    return problems


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN or Infinity. Raises ValueError."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


@dataclass(frozen=True)
class _File:
    """An image the server serves: `data`, then zeros up to `size` bytes (for huge bodies)."""

    data: bytes
    size: int
    content_type: str = "image/png"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: OfflineServer, address: tuple[str, int]) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Our own threads, tracked, so close() can wake and join every one of them.
        thread = threading.Thread(
            target=self._process, args=(request, client_address), daemon=True,
            name=f"offline-server-{self.owner.port}-conn",
        )  # fmt: skip
        self.owner._connection_opened(request, thread)
        thread.start()

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.owner._connection_closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE) or exc is None:
            log.debug("client %s went away: %r", client_address, exc)
        else:
            self.owner._handler_failed(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mai-image-offline/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True  # else headers and body, sent apart, wait for a delayed ACK
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def parse_request(self) -> bool:
        """Route every method, known or not, to `_dispatch` (which answers 404 or 405)."""
        parsed = super().parse_request()
        if parsed:
            setattr(self, "do_" + self.command, self._dispatch)
        return parsed

    def _dispatch(self) -> None:
        owner, self._answered = self.server.owner, False
        try:
            raw = self._read_body()
            if raw is None:
                return
            record = owner._record(self, raw)
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
            owner._handler_failed(exc)
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
        found = self.server.owner._file(file_id)
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
        fault = owner._next_fault()
        if not owner._pause(owner.latency_s):
            self._hang_up()
        elif fault is not None and fault.preempts:
            self._answer_preemptive(fault)
        elif not owner._authorised(self.headers.get("Authorization")):
            message = "Missing or invalid API key: send 'Authorization: Bearer <your key>'"
            self._error(401, message, "err_unauthorized")
        elif problems := (
            validate_body(record.json)
            if record.json is not None
            else ["the body is not valid JSON (UTF-8, no NaN or Infinity)"]
        ):
            self._error(400, "Invalid request body: " + "; ".join(problems), "err_validation")
        elif fault is not None and fault.name == "slow" and not owner._pause(fault.seconds):
            self._hang_up()
        else:
            usage = owner._usage()
            payload = {
                "created": int(time.time() * 1000),
                "data": self._image_item(record.json, fault),
                "meta": {"usage": usage},
            }
            owner._charged(usage["usd_spent"])  # before the last byte leaves: a client may look
            try:
                self._send(200, fl.dumps(payload), "application/json", {})
            except _CLIENT_GONE:
                owner._charged(-usage["usd_spent"])  # it never arrived whole
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
            header = fl.png_header(64, 64)
            return [
                {"url": self._image_url(owner._image_host._publish(_File(header, fault.n_bytes)))}
            ]
        data = fl.NOT_AN_IMAGE if name == "not_an_image" else owner._render(body)
        if owner.response_format == "b64_json":
            return [{"b64_json": _b64(data)}]
        return [{"url": self._image_url(owner._image_host._publish(_File(data, len(data))))}]

    def _image_url(self, file_id: str) -> str:
        """The image's URL on the CDN server, or on this one as the client reached it."""
        owner = self.server.owner
        base = owner._image_host.url
        seen = self.headers.get("Host", "")
        if owner._image_host is owner and owner.host in WILDCARD_HOSTS and _HOST_RE.match(seen):
            base = f"http://{seen}"  # bound to every interface: 0.0.0.0 is no address to fetch
        return f"{base}/files/{file_id}.png"

    def _answer_preemptive(self, fault: Fault) -> None:
        if fault.name in ("stall", "drop_connection"):
            self.server.owner._pause(fault.seconds)
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


class OfflineServer:
    """A local stand-in for the MAI-Image 2.5 API: real HTTP on `host`, images drawn from words.

    `start()` binds and serves in background threads; `close()` stops, wakes and joins them and
    closes every socket; as a context manager it does both. With `api_key` it requires
    `Authorization: Bearer <api_key>` (401 otherwise, never echoing what was sent); without,
    it accepts anything. Bodies are checked against the bundled `openapi.json` (400 naming the
    field); fields the schema does not name are ignored, as the schema allows.
    `response_format` is "url" (images served at /files/<id>.png, here or on `image_server`;
    the last MAX_STORED_IMAGES are kept) or "b64_json". `seed` makes the images of a run
    repeatable (None: new each server); temperature 0 needs no seed. `script(...)` queues faults
    for the next POSTs, one each, then `chaos` (if any) draws random ones; see `Fault` for
    which answer before the key check and which are charged. Every request is recorded in
    `requests`; exceptions inside handlers land in `errors` (and are logged).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        *,
        api_key: str | None = None,
        usd_per_image: float = 0.0627,
        credits_per_image: float = 125367,
        response_format: Literal["url", "b64_json"] = "url",
        seed: int | None = None,
        image_scale: float = 1.0,
        image_server: OfflineServer | None = None,
        chaos: Chaos | None = None,
    ) -> None:
        if response_format not in ("url", "b64_json"):
            raise ValueError(f"response_format={response_format!r}: use 'url' or 'b64_json'")
        if not image_scale > 0:
            raise ValueError(f"image_scale={image_scale!r} must be > 0")
        self.host, self._port = host, port
        self.latency_s = fl.non_negative("latency_s", latency_s)
        self._api_key = api_key
        self.usd_per_image, self.credits_per_image = usd_per_image, credits_per_image
        self.response_format = response_format
        self.seed, self.image_scale, self.chaos = seed, image_scale, chaos
        self._image_server = image_server
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._variations = random.Random(seed)
        self._chaos_rng = chaos.new_rng() if chaos is not None else None
        self._script: deque[Fault] = deque()
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED_REQUESTS)
        self._errors: list[BaseException] = []
        self._files: OrderedDict[str, _File] = OrderedDict()
        self._renders: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._live: dict[Any, tuple[int, threading.Thread]] = {}  # socket: (number, thread)
        self._post_count = self._connection_count = 0
        self._reported_usd = 0.0
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> OfflineServer:
        """Bind and start serving (once; later calls do nothing). Returns self."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this OfflineServer is closed; make a new one")
            if self._httpd is not None:
                return self
            if self._image_server is not None:
                self._image_server.start()
            self._httpd = _HTTPServer(self, (self.host, self._port))
            self._port = self._httpd.server_address[1]
            self._serve_thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"offline-server-{self._port}", daemon=True,
            )  # fmt: skip
            self._serve_thread.start()
        log.debug("offline server listening on %s", self.url)
        return self

    def close(self) -> None:
        """Stop serving, hang up every connection, join the threads (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            httpd, serve_thread = self._httpd, self._serve_thread
        self._closing.set()
        if httpd is None or serve_thread is None:
            return
        httpd.shutdown()
        serve_thread.join()
        httpd.server_close()
        with self._lock:
            live = list(self._live.items())
        for sock, _ in live:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + CLOSE_JOIN_S
        for _, (_, thread) in live:
            thread.join(max(0.0, deadline - time.monotonic()))
        log.debug("offline server on port %s closed", self._port)

    def __enter__(self) -> OfflineServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving" if self._httpd else "not started"
        return f"<OfflineServer {self.host}:{self._port} {state}>"

    # -- what tests read and set --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one given until `start()` picks one for port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """`http://host:port`, no trailing slash."""
        if self._httpd is None and self._port == 0:
            raise RuntimeError("the server has no port yet: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def post_count(self) -> int:
        """POSTs to /v1/images/generations since start (or the last `clear_requests()`)."""
        with self._lock:
            return self._post_count

    @property
    def connection_count(self) -> int:
        """TCP connections accepted since start."""
        with self._lock:
            return self._connection_count

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    @property
    def reported_usd(self) -> float:
        """Sum of `usd_spent` over the answers sent whole with a readable `meta.usage`."""
        with self._lock:
            return self._reported_usd

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._script)

    def clear_requests(self) -> None:
        """Forget the recorded requests and reset `post_count`."""
        with self._lock:
            self._requests.clear()
            self._post_count = 0

    def script(self, *faults: Fault) -> None:
        """Answer the next POSTs with these faults, one each, in order; then behave normally."""
        with self._lock:
            self._script.extend(faults)

    def set_latency(self, seconds: float) -> None:
        """Delay every later POST answer by `seconds`."""
        self.latency_s = fl.non_negative("seconds", seconds)

    # -- used by the handler threads ----------------------------------------------------------

    def _connection_opened(self, sock: Any, thread: threading.Thread) -> None:
        with self._lock:
            self._connection_count += 1
            self._live[sock] = (self._connection_count, thread)

    def _connection_closed(self, sock: Any) -> None:
        with self._lock:
            self._live.pop(sock, None)

    def _record(self, handler: _Handler, raw: bytes) -> RecordedRequest:
        try:
            parsed = parse_json(raw) if raw else None
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            parsed = None
        with self._lock:
            record = RecordedRequest(
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=raw,
                json=parsed,
                time=time.monotonic(),
                connection=self._live.get(handler.connection, (0, None))[0],
            )
            self._requests.append(record)
            if handler.command == "POST" and urlsplit(handler.path).path == GENERATIONS_PATH:
                self._post_count += 1
        return record

    def _handler_failed(self, exc: BaseException) -> None:
        log.error("offline server: a handler failed: %r", exc, exc_info=exc)
        with self._lock:
            self._errors.append(exc)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self.chaos is not None and self._chaos_rng is not None:
                return self.chaos.draw(self._chaos_rng)
        return None

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds`; False when the server closes meanwhile."""
        return seconds <= 0 or not self._closing.wait(seconds)

    def _authorised(self, header: str | None) -> bool:
        if self._api_key is None:
            return True
        scheme, _, token = (header or "").strip().partition(" ")
        expected = self._api_key.encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), expected
        )

    def _usage(self) -> dict[str, Any]:
        return {"credits_used": self.credits_per_image, "usd_spent": self.usd_per_image}

    def _charged(self, usd: float) -> None:
        with self._lock:
            self._reported_usd += usd

    def _render(self, body: dict[str, Any]) -> bytes:
        prompt, ratio = body["prompt"], body.get("aspect_ratio", "1:1")
        temperature = float(body.get("temperature", 1.0))
        with self._lock:
            variation = 0 if temperature == 0 else self._variations.getrandbits(63)
            key = (prompt, ratio, temperature, variation, self.image_scale)
            cached = self._renders.get(key)
        if cached is not None:
            return cached
        png = render_png(prompt, ratio, temperature, variation=variation, scale=self.image_scale)
        if variation == 0:
            with self._lock:
                self._renders[key] = png
                while len(self._renders) > RENDER_CACHE_SIZE:
                    self._renders.popitem(last=False)
        return png

    @property
    def _image_host(self) -> OfflineServer:
        return self._image_server if self._image_server is not None else self

    def _publish(self, file: _File) -> str:
        """Store an image to serve; returns its id."""
        file_id = uuid.uuid4().hex
        with self._lock:
            self._files[file_id] = file
            while len(self._files) > MAX_STORED_IMAGES:
                self._files.popitem(last=False)
        return file_id

    def _file(self, file_id: str) -> _File | None:
        with self._lock:
            found = self._files.get(file_id)
            if found is not None:
                self._files.move_to_end(file_id)
            return found
