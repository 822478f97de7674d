"""The offline simulator: `OfflineServer`, which plays the provider's image endpoint.

It owns the state (faults, rate limit, images, records); `handler.py` speaks HTTP for it and
reaches that state only through the public methods of `SimulatorBackend`, which this class
implements. Never imports requests or ipywidgets.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from . import faults as fl
from .faults import Chaos, Fault
from .handler import ServedFile, TrackedHTTPServer
from .render import render_png
from .schema import GENERATIONS_PATH, RecordedRequest, parse_json

__all__ = ["WILDCARD_HOSTS", "OfflineServer", "RecordedRequest"]

log = logging.getLogger("mai_image_nb.offline")

MAX_STORED_IMAGES = 256  # least recently used images beyond this are forgotten (their URL 404s)
MAX_RECORDED_REQUESTS = 20_000  # oldest records beyond this are dropped (post_count keeps counting)
RENDER_CACHE_SIZE = 32  # temperature-0 images are the same every time: keep the last few
CLOSE_JOIN_S = 5.0
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - compared with, never bound here
_HOST_RE = re.compile(r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$")


def _rate_limited(left_s: float, retry_after_s: float | None) -> Fault:
    """The 429 for a POST inside a rate-limit window with `left_s` seconds to go."""
    if retry_after_s is not None:
        wait_s, wait_ms = retry_after_s, round(retry_after_s * 1000)
    else:  # rounded up, so a client that waits as told arrives after the window
        wait_s, wait_ms = left_s, math.ceil(left_s * 1000)
    return Fault.status(429, retry_after=str(math.ceil(wait_s)), retry_after_ms=str(wait_ms))


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
    for the next POSTs, one each, then `rate_limit(...)` windows answer 429, then `chaos` (if
    any) draws random ones; see `Fault` for which answer before the key check and which are
    charged. Every request is recorded in
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
        self._files: OrderedDict[str, ServedFile] = OrderedDict()
        self._renders: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._live: dict[Any, tuple[int, threading.Thread]] = {}  # socket: (number, thread)
        self._post_count = self._connection_count = 0
        self._reported_usd = 0.0
        self._limited_until = -math.inf  # time.monotonic() when the rate-limit window ends
        self._limited_retry_after_s: float | None = None
        self._httpd: TrackedHTTPServer | None = None
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
            self._httpd = TrackedHTTPServer(self, (self.host, self._port))
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

    def rate_limit(self, seconds: float, *, retry_after_s: float | None = None) -> None:
        """Answer every POST to the generations path 429 for the next `seconds` (monotonic).

        Each 429 has the provider's error shape (kind `err_rate_limit`), charges nothing, and
        asks to wait the time left in the window, or `retry_after_s` when given: rounded up to
        whole seconds as `Retry-After`, and in milliseconds as `retry-after-ms`. Scripted faults
        still come first; chaos draws nothing inside the window. A new call replaces the
        window; `rate_limit(0)` ends it. Raises ValueError for a negative or infinite number.
        """
        seconds = fl.non_negative("seconds", seconds)
        if retry_after_s is not None:
            retry_after_s = fl.non_negative("retry_after_s", retry_after_s)
        with self._lock:
            self._limited_until = time.monotonic() + seconds
            self._limited_retry_after_s = retry_after_s

    # -- the handler's seam: SimulatorBackend (handler.py), called from its threads -----------

    def connection_opened(self, sock: Any, thread: threading.Thread) -> None:
        """Track a new connection and the thread serving it, so `close()` can join it."""
        with self._lock:
            self._connection_count += 1
            self._live[sock] = (self._connection_count, thread)

    def connection_closed(self, sock: Any) -> None:
        """Forget a connection whose thread is ending."""
        with self._lock:
            self._live.pop(sock, None)

    def record_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, sock: Any
    ) -> RecordedRequest:
        """Record a request as received on connection `sock` (counted if a generations POST)."""
        try:
            parsed = parse_json(body) if body else None
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            parsed = None
        with self._lock:
            record = RecordedRequest(
                method=method,
                path=path,
                headers=headers,
                body=body,
                json=parsed,
                time=time.monotonic(),
                connection=self._live.get(sock, (0, None))[0],
            )
            self._requests.append(record)
            if method == "POST" and urlsplit(path).path == GENERATIONS_PATH:
                self._post_count += 1
        return record

    def handler_failed(self, exc: BaseException) -> None:
        """Log and keep an exception raised inside a handler (see `errors`)."""
        log.error("offline server: a handler failed: %r", exc, exc_info=exc)
        with self._lock:
            self._errors.append(exc)

    def next_fault(self) -> Fault | None:
        """The next POST's fault: scripted first, then the rate-limit window, then chaos."""
        with self._lock:
            if self._script:
                return self._script.popleft()
            if (left_s := self._limited_until - time.monotonic()) > 0:
                return _rate_limited(left_s, self._limited_retry_after_s)
            if self.chaos is not None and self._chaos_rng is not None:
                return self.chaos.draw(self._chaos_rng)
        return None

    def pause(self, seconds: float) -> bool:
        """Wait `seconds`; False when the server closes meanwhile."""
        return seconds <= 0 or not self._closing.wait(seconds)

    def is_authorised(self, header: str | None) -> bool:
        """Whether an `Authorization` value carries `api_key` (always, when none is required)."""
        if self._api_key is None:
            return True
        scheme, _, token = (header or "").strip().partition(" ")
        expected = self._api_key.encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), expected
        )

    def usage(self) -> dict[str, Any]:
        """The `meta.usage` of one image."""
        return {"credits_used": self.credits_per_image, "usd_spent": self.usd_per_image}

    def count_reported_usd(self, usd: float) -> None:
        """Add `usd` (negative: take back) to `reported_usd`."""
        with self._lock:
            self._reported_usd += usd

    def render(self, body: dict[str, Any]) -> bytes:
        """The PNG for a valid generations body (temperature 0: cached, the same every time)."""
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

    def publish_image(self, file: ServedFile) -> str:
        """Keep an image to serve (on `image_server` when given); returns its id.

        The last MAX_STORED_IMAGES are kept; older ones are forgotten (their URL answers 404).
        """
        if self._image_server is not None:
            return self._image_server.publish_image(file)
        file_id = uuid.uuid4().hex
        with self._lock:
            self._files[file_id] = file
            while len(self._files) > MAX_STORED_IMAGES:
                self._files.popitem(last=False)
        return file_id

    def find_image(self, file_id: str) -> ServedFile | None:
        """An image this server still keeps (marked recently used), or None."""
        with self._lock:
            found = self._files.get(file_id)
            if found is not None:
                self._files.move_to_end(file_id)
            return found

    def image_url(self, file_id: str, host_header: str) -> str:
        """Where a client fetches image `file_id`: on `image_server`, or here as it reached us.

        Bound to every interface (0.0.0.0), this server's own address is no address to fetch,
        so the request's `Host` header (when well formed) gives the host instead.
        """
        if self._image_server is not None:
            return self._image_server.image_url(file_id, "")  # its own address, never Host
        base = self.url
        if self.host in WILDCARD_HOSTS and _HOST_RE.match(host_header):
            base = f"http://{host_header}"
        return f"{base}/files/{file_id}.png"
