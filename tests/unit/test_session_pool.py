"""`transport.SessionPool`: sessions lent per call, reused, and never more than `max_idle` kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mai_image_nb.transport import SessionPool


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    """A tiny keep-alive server on loopback, so sessions hold a pooled connection."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def is_closed(session: requests.Session) -> bool:
    # Closing a session clears its connection pools; an open one that made a call keeps one.
    return all(not adapter.poolmanager.pools for adapter in session.adapters.values())  # type: ignore[attr-defined]


def test_a_returned_session_is_lent_again() -> None:
    pool = SessionPool(max_idle=2)
    with pool.session("api") as first:
        pass
    with pool.session("api") as second:
        assert second is first
    with pool.session("download") as other:
        assert other is not first  # purposes never share (downloads never carry the key)
    pool.close()


def test_sessions_beyond_max_idle_are_closed_when_returned(url: str) -> None:
    pool = SessionPool(max_idle=2)
    lent: list[requests.Session] = []
    with pool.session("api") as a, pool.session("api") as b, pool.session("api") as c:
        lent += [a, b, c]
        for session in lent:
            session.get(url, timeout=5).close()
        assert not any(is_closed(s) for s in lent)
        assert pool.open_sessions == 3
    assert pool.open_sessions == 2
    assert sum(is_closed(s) for s in lent) == 1
    pool.close()
    assert pool.open_sessions == 0
    assert all(is_closed(s) for s in lent)


def test_many_threads_one_after_another_share_a_bounded_set() -> None:
    pool = SessionPool(max_idle=4)
    seen: set[int] = set()
    lock = threading.Lock()

    def work() -> None:
        with pool.session("api") as session, lock:
            seen.add(id(session))

    for _ in range(50):  # 200 short-lived worker threads, as 50 batches of 4 would make
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in threads)
    assert pool.open_sessions <= 4
    assert len(seen) <= 4 * 2  # ids may be reused after close, but never one per thread
    pool.close()


def test_a_session_lent_after_close_is_closed_on_return(url: str) -> None:
    pool = SessionPool()
    pool.close()
    with pool.session("api") as late:
        late.get(url, timeout=5).close()
        assert not is_closed(late)
    assert is_closed(late)
    assert pool.open_sessions == 0
