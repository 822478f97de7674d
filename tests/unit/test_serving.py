"""The package's own HTTP head parsers against the standard library's, on the same bytes.

`RoutingHandler` parses the common request head itself and leaves anything else to
`BaseHTTPRequestHandler.parse_request`; whichever path a head takes, the handler must end in
the same state (command, path, version, headers, keep-alive) with the same bytes left to read.
`QuickResponse` does the same for an answer's head against `http.client.HTTPResponse`: same
status, headers, framing, body and bytes left on the connection.
"""

from __future__ import annotations

import http.client
import io
from http.server import BaseHTTPRequestHandler

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mai_image_nb._serving import QuickResponse, RoutingHandler

NAMES = ("Host", "Content-Type", "Content-Length", "Authorization", "Connection", "Accept",
         "X-Request-Id", "User-Agent", "Transfer-Encoding", "content-length", "Expect")  # fmt: skip
BODY = b'{"prompt": "a fox"}'


def _state(raw: bytes, parse: str) -> tuple[object, ...]:
    """Parse `raw` (request line, head, body) with `parse` ("ours" or "stdlib")."""
    handler = RoutingHandler.__new__(RoutingHandler)  # no socket: the parser alone
    rfile = io.BufferedReader(io.BytesIO(raw))
    handler.rfile, handler.wfile = rfile, io.BytesIO()
    handler.client_address = ("127.0.0.1", 0)
    handler.request_version = handler.default_request_version
    handler.raw_requestline = rfile.readline(65537)
    if parse == "ours":
        parsed = handler.parse_request()
    else:
        parsed = BaseHTTPRequestHandler.parse_request(handler)
    if not parsed:
        return (False, handler.wfile.getvalue()[:12])
    return (
        True,
        handler.command,
        handler.path,
        handler.request_version,
        handler.requestline,
        handler.close_connection,
        list(handler.headers.items()),
        rfile.read(),
    )


def _assert_same(raw: bytes) -> None:
    assert _state(raw, "ours") == _state(raw, "stdlib"), raw


def test_a_client_request_takes_the_quick_path_and_reads_as_the_standard_librarys() -> None:
    raw = (b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1:8766\r\n"
           b"User-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
           b"Accept: */*\r\nConnection: keep-alive\r\nAuthorization: Bearer t0k\r\n"
           b"Content-Type: application/json\r\nContent-Length: 19\r\n\r\n" + BODY)  # fmt: skip
    _assert_same(raw)
    handler = RoutingHandler.__new__(RoutingHandler)
    handler.rfile = io.BufferedReader(io.BytesIO(raw))
    handler.raw_requestline = handler.rfile.readline()
    assert handler._parse_plain_request()  # the quick path took it (not the fallback)
    assert handler.headers["content-length"] == "19" and handler.rfile.read() == BODY


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "M-SEARCH", "get"]),
    path=st.sampled_from(["/", "/v1/images/generations", "//evil.example/x", "/a?b=c d"]),
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1", "XTTP/1.1"]),
    separator=st.sampled_from([" ", "  ", "\t"]),
    headers=st.lists(
        st.tuples(
            st.sampled_from([*NAMES, "Bad Name", " Folded", "X:Y", "Ünï"]),
            st.text(alphabet=" \t:abcXYZ019-=;,é\x7f\r\n", max_size=12),
        ),
        max_size=6,
    ),
    ending=st.sampled_from(["\r\n", "\n"]),
)
def test_any_head_leaves_the_handler_as_the_standard_library_would(
    method: str,
    path: str,
    version: str,
    separator: str,
    headers: list[tuple[str, str]],
    ending: str,
) -> None:
    line = separator.join((method, path, version)) + ending
    head = "".join(f"{name}: {value}{ending}" for name, value in headers) + ending
    _assert_same((line + head).encode("utf-8") + BODY)


def test_a_head_not_yet_in_the_buffer_is_left_to_the_standard_library() -> None:
    long_value = "v" * 70_000  # more than one peek: the quick path must not guess
    _assert_same(f"GET / HTTP/1.1\r\nX-Long: {long_value}\r\n\r\n".encode())
    _assert_same(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n")


# -- answers: QuickResponse against http.client.HTTPResponse ----------------------------------


class _Unclosed(io.BufferedReader):
    """A connection's read side that stays readable after the answer is done with it."""

    def close(self) -> None:
        pass


class _Socket:
    """What HTTPResponse reads from: `makefile` over fixed bytes."""

    def __init__(self, raw: bytes) -> None:
        self.rfile = _Unclosed(io.BytesIO(raw))

    def makefile(self, mode: str) -> _Unclosed:
        return self.rfile


def _answer(raw: bytes, response_class: type[http.client.HTTPResponse],
            method: str = "POST") -> tuple[object, ...]:  # fmt: skip
    """Read `raw` as one answer; everything a caller could see, then what is left unread."""
    sock = _Socket(raw)
    response = response_class(sock, method=method)  # type: ignore[arg-type]
    try:
        response.begin()
        body: object = response.read()
    except (http.client.HTTPException, ValueError) as exc:
        return (type(exc).__name__, sock.rfile.read())
    return (
        response.version, response.status, response.reason, list(response.headers.items()),
        response.chunked, response.will_close, body, sock.rfile.read(),
    )  # fmt: skip


def _assert_same_answer(raw: bytes, method: str = "POST") -> None:
    assert _answer(raw, QuickResponse, method) == _answer(raw, http.client.HTTPResponse, method)


def test_a_simulator_answer_takes_the_quick_path_and_reads_as_the_standard_librarys() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nServer: mai-image-offline/1.0\r\nDate: Tue, 01 Dec 2026 "
           b"02:26:44 GMT\r\nContent-Type: application/json\r\nContent-Length: 19\r\n"
           b"x-request-id: r-1\r\n\r\n" + BODY + b"HTTP/1.1 204 No Content\r\n\r\n")  # fmt: skip
    _assert_same_answer(raw)
    response = QuickResponse(_Socket(raw), method="POST")  # type: ignore[arg-type]
    assert response._begin_plain()  # the quick path took it (not the fallback)
    assert response.getheader("content-length") == "19" and response.read() == BODY
    assert not response.will_close


@pytest.mark.parametrize(
    "head",
    [
        "HTTP/1.1 200 OK\r\nContent-Length: -1",  # ignored: read to the end, then close
        "HTTP/1.1 200 OK\r\nContent-Length: 1_9",  # int() reads it, so both do
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        "HTTP/1.1 200 OK",  # no length: the body runs to the end of the connection
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 19",
        "HTTP/1.0 200 OK\r\nContent-Length: 19",
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 19",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 19",
    ],
)
def test_each_framing_takes_the_quick_path_and_reads_as_the_standard_librarys(head: str) -> None:
    body = b"13\r\n" + BODY + b"\r\n0\r\n\r\n" if "chunked" in head else BODY
    raw = head.encode() + b"\r\n\r\n" + body + b"HTTP/1.1 204 No Content\r\n\r\n"
    _assert_same_answer(raw)
    assert QuickResponse(_Socket(raw), method="POST")._begin_plain()  # type: ignore[arg-type]


STATUS_LINES = (
    "HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 429 Too Many Requests", "HTTP/1.1 204 ",
    "HTTP/1.1 304 Not Modified", "HTTP/1.1 200", "HTTP/1.1  200 OK", "HTTP/1.1 103 Early",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", "HTTP/2 200 OK", "HTTP/1.1 2000 OK",
    "ICY 200 OK", "HTTP/1.1 200 \u00e9 ok \x1c",
)  # fmt: skip
ANSWER_NAMES = ("Content-Type", "x-request-id", "Retry-After", "Connection", "Keep-Alive",
                "Bad Name", " Folded", "X:Y", "Ünï")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    status_line=st.sampled_from(STATUS_LINES),
    headers=st.lists(
        st.tuples(
            st.sampled_from(ANSWER_NAMES),
            st.text(alphabet=" \t:abcXYZ019-=;,é\x7f\r\n", max_size=12),
        ),
        max_size=5,
    ),
    framing=st.sampled_from(["length", "chunked", "close", "bad length", "negative length"]),
    body=st.binary(max_size=40),
    chunk=st.integers(1, 16),
    method=st.sampled_from(["POST", "HEAD"]),
    ending=st.sampled_from(["\r\n", "\n"]),
)
def test_any_answer_reads_as_the_standard_library_would(
    status_line: str, headers: list[tuple[str, str]], framing: str, body: bytes,
    chunk: int, method: str, ending: str,
) -> None:  # fmt: skip
    lines = [f"{name}: {value}" for name, value in headers]
    payload = body
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
    elif framing == "bad length":
        lines.append("Content-Length: 1_0")  # int() reads it; both must agree
    elif framing == "negative length":
        lines.append("Content-Length: -1")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: Chunked")
        parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = "".join(line + ending for line in [status_line, *lines]) + ending
    _assert_same_answer(head.encode("utf-8") + payload, method)


def test_an_answer_whose_head_is_not_in_the_buffer_is_left_to_the_standard_library() -> None:
    long_value = "v" * 70_000
    raw = f"HTTP/1.1 200 OK\r\nX-Long: {long_value}\r\nContent-Length: 2\r\n\r\nok".encode()
    _assert_same_answer(raw)
    response = QuickResponse(_Socket(raw), method="POST")  # type: ignore[arg-type]
    assert not response._begin_plain() and response.fp.read(4) == b"HTTP"  # nothing read
    _assert_same_answer(b"")  # the service hung up: RemoteDisconnected both ways
