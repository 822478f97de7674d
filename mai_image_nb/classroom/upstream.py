"""The gateway's side of the provider: POST with the teacher's key, nothing of the student's.

Plain `http.client` connections, kept alive in a pool: the connection is opened *before* the
ledger marks a request as sent (`before_send`), and the request, its head prepared once,
leaves in one write right after, so a crash between "marked sent" and "sent" has a window
of microseconds, not the milliseconds a full HTTP library spends preparing a request. The
answer is read by `http.client` (`QuickResponse`). The body sent is rebuilt from the
validated fields; no header of the student's is passed on; whatever comes back is scrubbed
of the key before a student can see it. The request asks for the answer uncompressed (HTTP
lets a server compress one that does not say); a gzip or deflate answer is decoded all the
same, within the size cap, since the students' clients are told nothing of its coding. (No
proxy support: the gateway connects to the upstream directly.)
"""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from mai_image_nb import transport
from mai_image_nb._serving import QuickResponse
from mai_image_nb.errors import APIConnectionError, APITimeoutError, MaiImageError, ResponseError

__all__ = ["UPSTREAM_TIMEOUT_S", "Upstream", "header_safe", "scrub"]

UPSTREAM_TIMEOUT_S = 180.0  # the provider may take a while to draw; the student's client waits
MAX_REDIRECTS = 5
STALE_FAILURE_S = 0.5  # a reused connection failing this soon was closed before our request
POOL_MAX = 256  # idle keep-alive connections kept
HIDDEN = b"<hidden>"
ERROR_ANSWER_MAX_BYTES = 64 * 1024  # an error's body is a message: more is cut off
_CHUNK = 64 * 1024
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
               "deflate": zlib.MAX_WBITS}  # fmt: skip
_OTHER_CODINGS = frozenset(("br", "zstd", "compress", "x-compress", "dcb", "dcz"))


def header_safe(text: str) -> bool:
    """Only visible ASCII: nothing that could end a request line or header early."""
    return text.isascii() and text.isprintable() and " " not in text


def scrub(data: bytes, secret: bytes) -> bytes:
    """`data` with every copy of `secret` replaced by <hidden>."""
    return data.replace(secret, HIDDEN) if secret and secret in data else data


def _decoded(data: bytes, coding: str, status: int) -> bytes:
    """An answer's body without its gzip or deflate coding, within the size cap for `status`.

    Raises:
        ResponseError: a 2xx answer in another coding, corrupt, cut short or over the cap
            once decoded (an error's body that cannot be read comes back empty instead: its
            status says enough).
    """
    limit = transport.MAX_ANSWER_BYTES if status < 300 else ERROR_ANSWER_MAX_BYTES
    wbits = _ZLIB_WBITS.get(coding)
    try:
        if wbits is None:  # named only if it is a known one: the value is the service's text
            shown = repr(coding) if coding in _OTHER_CODINGS else "an unknown one"
            raise ResponseError(f"the answer is in a coding the gateway cannot read: {shown}")
        # "deflate" is zlib-wrapped by the standard, and raw in some servers: try both.
        for bits in (wbits, -zlib.MAX_WBITS) if coding == "deflate" else (wbits,):
            decoder = zlib.decompressobj(bits)
            try:
                out = decoder.decompress(data, limit + 1)
            except zlib.error:
                continue
            if len(out) > limit:
                raise ResponseError(f"the answer is over the cap of {limit:,} bytes, decoded")
            if decoder.eof:
                return out
        raise ResponseError(f"the answer's {coding} body is corrupt or cut short")
    except ResponseError:
        if status < 300:
            raise
        return b""


class Upstream:
    """Sends generation bodies to `base_url` with the teacher's key; thread-safe."""

    def __init__(
        self, base_url: str, api_key: str | None, *, timeout_s: float = UPSTREAM_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not header_safe(parts.netloc + parts.path)
        ):
            raise ValueError(f"upstream {base_url!r} is not an http(s) URL")
        if api_key and not header_safe(api_key):
            raise ValueError("the teacher's key holds spaces, line breaks or other characters "
                             "an HTTP header cannot carry")  # fmt: skip
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self.timeout_s = timeout_s
        self._secret = (api_key or "").encode("utf-8")
        head = [f"POST {parts.path.rstrip('/')}/v1/images/generations HTTP/1.1",
                f"Host: {parts.netloc.rpartition('@')[2]}", "Content-Type: application/json",
                "Accept: application/json", "Accept-Encoding: identity",
                f"User-Agent: {transport.USER_AGENT}"]  # fmt: skip
        if api_key:
            head.append(f"Authorization: Bearer {api_key}")
        self._head = "".join(line + "\r\n" for line in head).encode("ascii")
        self._ssl = ssl.create_default_context() if self._https else None
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(POOL_MAX)
        self._lock = threading.Lock()
        self._closed = False

    def post(
        self, body: dict[str, Any], *, before_send: Callable[[], None] | None = None
    ) -> transport.Reply:
        """POST once; the answer with the key scrubbed from its body and headers.

        `before_send` runs once the connection is open, just before the request is written.

        Raises:
            APIConnectionError / APITimeoutError: the service could not be reached in time.
            ResponseError: a 2xx answer over the size cap, or in a coding that cannot be read.
        """
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(data) + data
        conn, reused = self._connection()
        if before_send is not None:
            try:
                before_send()
            except BaseException:
                self._give_back(conn)
                raise
        sent_at = time.monotonic()
        try:
            try:
                status, reply_headers, answer = self._exchange(conn, request)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the service had closed fails at once: send again on a
                # fresh one. A failure later may follow work (and a charge): never repeated.
                if not reused or time.monotonic() - sent_at > STALE_FAILURE_S:
                    raise
                conn.close()
                conn, _ = self._connection(fresh=True)
                status, reply_headers, answer = self._exchange(conn, request)
        except TimeoutError as exc:
            conn.close()
            raise APITimeoutError(f"timed out after {self.timeout_s:g} s: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise APIConnectionError(f"connection failed: {type(exc).__name__}") from None
        except ResponseError:
            conn.close()
            raise
        coding = reply_headers.pop("content-encoding", "").strip().lower()
        if coding not in ("", "identity"):
            reply_headers.pop("content-length", None)  # of the coded body
            answer = _decoded(answer, coding, status)
        scrubbed = requests.structures.CaseInsensitiveDict(
            {k: self.scrub_text(v) for k, v in reply_headers.items()}
        )
        return transport.Reply(status, scrubbed, scrub(answer, self._secret))

    def _exchange(
        self, conn: http.client.HTTPConnection, request: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send `request` (head and body) in one write; read the answer, within its cap."""
        sock = conn.sock
        sock.settimeout(self.timeout_s)  # the setting now, not when it was opened
        sock.sendall(request)
        response = QuickResponse(sock, method="POST")
        response.begin()
        limit = transport.MAX_ANSWER_BYTES if response.status < 300 else ERROR_ANSWER_MAX_BYTES
        declared = response.getheader("content-length", "")
        if response.status < 300 and declared.isdigit() and int(declared) > limit:
            raise ResponseError(f"the answer is {int(declared):,} bytes; the cap is {limit:,}")
        chunks, size = [], 0
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                if response.status < 300:
                    raise ResponseError(f"the answer is over the cap of {limit:,} bytes")
                chunks.append(chunk[: limit - (size - len(chunk))])
                conn.close()
                break
            chunks.append(chunk)
        reply_headers = {k.lower(): v for k, v in response.headers.raw_items()}  # as read
        if response.will_close or size > limit:
            conn.close()
        else:
            self._give_back(conn)
        return response.status, reply_headers, b"".join(chunks)

    def _connection(self, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """An open connection: an idle kept-alive one (reused=True), else a new one."""
        if not fresh:
            try:
                return self._idle.get_nowait(), True
            except queue.Empty:
                pass
        with self._lock:
            if self._closed:
                raise APIConnectionError("the gateway is closed")
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s,
                                               context=self._ssl)  # fmt: skip
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise APITimeoutError(f"connecting to {self._host} timed out") from None
        except OSError as exc:
            conn.close()
            raise APIConnectionError(
                f"cannot connect to {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None
        return conn, False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            closed = self._closed
        if closed:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def scrub_text(self, text: str) -> str:
        """`text` with every copy of the key replaced by <hidden> (the key is plain ASCII)."""
        key = self._secret.decode("ascii")
        return text.replace(key, HIDDEN.decode("ascii")) if key and key in text else text

    def download(self, url: str) -> bytes:
        """GET an image the answer pointed at, without the key (plain http.client: it runs
        beside the students' requests, so it must cost little), following a few redirects.

        Raises:
            MaiImageError: the download failed, was refused, or passed the size cap.
        """
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise MaiImageError("the image URL is not http(s)")
            conn: http.client.HTTPConnection
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(parts.hostname, parts.port,
                    timeout=self.timeout_s, context=ssl.create_default_context())  # fmt: skip
            else:
                conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                                  timeout=self.timeout_s)  # fmt: skip
            try:
                path = parts.path or "/"
                conn.request("GET", path + (f"?{parts.query}" if parts.query else ""),
                             headers={"User-Agent": transport.USER_AGENT})  # fmt: skip
                response = conn.getresponse()
                if response.status in (301, 302, 303, 307, 308):
                    url = urljoin(url, response.getheader("location", ""))
                    continue
                if not 200 <= response.status < 300:
                    raise MaiImageError(f"the image URL answered HTTP {response.status}")
                data = response.read(transport.MAX_IMAGE_BYTES + 1)
                if len(data) > transport.MAX_IMAGE_BYTES:
                    raise MaiImageError("the image is over the size cap")
                return data
            except (OSError, http.client.HTTPException) as exc:
                raise MaiImageError(f"image download failed: {type(exc).__name__}") from None
            finally:
                conn.close()
        raise MaiImageError(f"the image URL redirected more than {MAX_REDIRECTS} times")

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
