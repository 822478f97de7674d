"""`Gateway`: the running server over one class folder (ledger, queue, upstream, gallery).

It owns the HTTP server and its connection threads (tracked, so `close()` can finish
or release what is in flight, hang up idle connections and join every thread).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .gallery import Gallery
from .ledger import Ledger
from .queue import FairQueue
from .roster import Roster
from .terms import hash_token, now_iso, to_micro
from .upstream import Upstream

__all__ = ["CLOSE_GRACE_S", "Gateway"]

log = logging.getLogger("mai_image_nb.classroom")

CLOSE_GRACE_S = 30.0  # how long close() lets requests already upstream finish
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
LISTEN_BACKLOG = 1024  # a class connecting at once must not meet a full accept queue (default 5)
PRICE_KEY = "usd_per_image_micro"


class GatewayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, gateway: Gateway, address: tuple[str, int]) -> None:
        from .handler import Handler

        self.gateway = gateway
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._process, args=(request, client_address), daemon=True,
            name="classroom-conn",
        )  # fmt: skip
        self.gateway.connection_opened(request, thread)
        thread.start()

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.gateway.connection_closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE) or exc is None:
            log.debug("a client went away: %r", type(exc).__name__)
        else:
            log.error("classroom gateway: a handler failed: %r", exc, exc_info=exc)


class Gateway:
    """The HTTP server over a class folder. `Classroom` builds one; tests may too."""

    def __init__(
        self,
        folder: Path,
        *,
        ledger: Ledger,
        roster: Roster,
        upstream: Upstream,
        admin_token: str,
        default_price_usd: float,
        default_budget_usd: float,
        max_inflight: int,
        per_student: int,
        host: str,
        port: int,
    ) -> None:
        self.folder = folder
        self.ledger = ledger
        self.upstream = upstream
        self.queue = FairQueue(max_inflight=max_inflight, per_student=per_student)
        self.admin_hash = hash_token(admin_token)
        stored = ledger.meta(PRICE_KEY)
        self._price_micro = int(stored) if stored and stored.isdigit() else to_micro(
            default_price_usd)  # fmt: skip
        self.roster = roster
        # Under JupyterHub, a managed service is proxied at /services/<name>/: accept that too.
        self.path_prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").rstrip("/")
        self.default_budget_micro = to_micro(default_budget_usd)
        self._lock = threading.Lock()
        self._live: dict[Any, threading.Thread] = {}
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._refused: dict[str, Any] | None = None  # the service refusing the teacher's key
        self._httpd = GatewayHTTPServer(
            self, (host, port)
        )  # binds first: a taken port leaves no thread
        self.gallery = Gallery(folder, upstream)
        self.host, self.port = host, self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"classroom-gateway-{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def estimate_micro(self) -> int:
        """What the next image is expected to cost: the last reported price, else the default."""
        with self._lock:
            return self._price_micro

    def state(self) -> dict[str, Any]:
        """What the teacher's dashboard shows above the table: the queue and the disk."""
        upstream, waiting = self.queue.counts()
        return {
            "upstream": upstream,
            "waiting": waiting,
            "ledger_ok": not self.ledger.write_failing,
            "gallery_paused": self.gallery.paused,
            "disk_free_mb": shutil.disk_usage(self.folder).free // 2**20,
            "upstream_refused": self.upstream_refused(),
        }

    def upstream_refused(self) -> dict[str, Any] | None:
        """Since when (and how) the service refuses the teacher's key, or None while it is
        accepted: {"status", "message", "since"}."""
        with self._lock:
            return None if self._refused is None else dict(self._refused)

    def note_refused(self, status: int, message: str) -> None:
        """The service refused the teacher's key or account (401/402/403): the teacher's to
        fix, so it is logged once and shown on the dashboard until an image comes through."""
        with self._lock:
            first = self._refused is None
            since = now_iso() if self._refused is None else self._refused["since"]
            self._refused = {"status": status, "message": message, "since": since}
        if first:
            log.error("classroom gateway: the image service refused the teacher's key "
                      "(HTTP %d): %s", status, message)  # fmt: skip

    def note_accepted(self) -> None:
        """An answer with an image: the key works (again)."""
        if self._refused is None:  # the common case, without the lock
            return
        with self._lock:
            was, self._refused = self._refused, None
        if was is not None:
            log.warning("classroom gateway: the image service accepts the teacher's key again")

    def note_price(self, micro: int) -> None:
        with self._lock:
            changed, self._price_micro = micro != self._price_micro, micro
        if changed:
            self.ledger.set_meta(PRICE_KEY, str(micro))

    # -- connections --------------------------------------------------------------------------

    def connection_opened(self, sock: Any, thread: threading.Thread) -> None:
        with self._lock:
            self._live[sock] = thread

    def connection_closed(self, sock: Any) -> None:
        with self._lock:
            self._live.pop(sock, None)

    @contextlib.contextmanager
    def busy(self) -> Any:
        """Counts a request being answered, so close() can wait for it."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    # -- life cycle ---------------------------------------------------------------------------

    def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Stop accepting, release what waits, let what is upstream finish, join every thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
        self.queue.close()  # waiting requests answer 503 and give their holds back
        deadline = time.monotonic() + grace_s
        with self._lock:
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            live = list(self._live.items())
        for sock, _ in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in live:
            thread.join(max(0.1, deadline - time.monotonic()))
        stuck = sum(thread.is_alive() for _, thread in live)
        if stuck:
            log.warning("classroom gateway: %d connection(s) did not end in time", stuck)
        if not self.gallery.close():
            log.warning("classroom gateway: the gallery was still saving when it stopped")
        self.upstream.close()
        self.ledger.close()
        log.info("classroom gateway on port %s stopped", self.port)
