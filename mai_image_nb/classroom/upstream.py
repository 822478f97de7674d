"""The gateway's side of the provider: POST with the teacher's key, nothing of the student's.

A fixed set of `requests` sessions (one per upstream slot) carries the key; the body sent is
rebuilt from the validated fields, and no header of the student's is passed on. Whatever
comes back is scrubbed of the key before a student can see it.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import requests

from mai_image_nb import transport
from mai_image_nb.errors import MaiImageError

__all__ = ["UPSTREAM_TIMEOUT_S", "Upstream", "scrub"]

UPSTREAM_TIMEOUT_S = 180.0  # the provider may take a while to draw; the student's client waits
HIDDEN = b"<hidden>"


def scrub(data: bytes, secret: bytes) -> bytes:
    """`data` with every copy of `secret` replaced by <hidden>."""
    return data.replace(secret, HIDDEN) if secret and secret in data else data


class Upstream:
    """Sends generation bodies to `base_url` with the teacher's key; thread-safe."""

    def __init__(
        self, base_url: str, api_key: str | None, *, timeout_s: float = UPSTREAM_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._auth = transport.BearerAuth(api_key) if api_key else None
        self._secret = (api_key or "").encode("utf-8")
        self._free: queue.LifoQueue[requests.Session] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._all: list[requests.Session] = []
        self._closed = False
        self._downloads = transport.SessionPool()  # never carries the key

    def post(self, body: dict[str, Any]) -> transport.Reply:
        """POST once; the answer with the key scrubbed from its body and headers.

        Raises:
            APIConnectionError / APITimeoutError: the service could not be reached in time.
            ResponseError: a 2xx answer over the size cap.
        """
        session = self._session()
        try:
            reply = transport.post_json(
                session,
                self.base_url + "/v1/images/generations",
                body,
                auth=self._auth,
                timeout_s=self.timeout_s,
            )
        finally:
            self._free.put(session)
        headers = requests.structures.CaseInsensitiveDict(
            {k: self.scrub_text(v) for k, v in reply.headers.items()}
        )
        return transport.Reply(reply.status, headers, scrub(reply.body, self._secret))

    def scrub_text(self, text: str) -> str:
        return scrub(text.encode("utf-8"), self._secret).decode("utf-8", "replace")

    def download(self, url: str) -> bytes:
        """GET an image the answer pointed at, without the key.

        Raises:
            MaiImageError: the download failed or was refused.
        """
        reply = transport.fetch_image(self._downloads.get("gallery"), url, timeout_s=self.timeout_s)
        if not 200 <= reply.status < 300:
            raise MaiImageError(f"the image URL answered HTTP {reply.status}")
        return reply.body

    def _session(self) -> requests.Session:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        session = requests.Session()
        session.headers["User-Agent"] = transport.USER_AGENT
        with self._lock:
            if self._closed:
                session.close()
                raise MaiImageError("the gateway is closed")
            self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions, self._all = self._all, []
        for session in sessions:
            for adapter in session.adapters.values():
                adapter.close()
            session.close()
        self._downloads.close()
