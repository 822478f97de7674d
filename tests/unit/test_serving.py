"""The servers' own request-head parser against the standard library's, on the same bytes.

`RoutingHandler` parses the common head itself and leaves anything else to
`BaseHTTPRequestHandler.parse_request`; whichever path a head takes, the handler must end in
the same state (command, path, version, headers, keep-alive) with the same bytes left to read.
"""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler

from hypothesis import given, settings
from hypothesis import strategies as st

from mai_image_nb._serving import RoutingHandler

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
