"""Security canaries: the teacher's key is in no answer, header, log record or file of the folder;
student tokens are in no file but tokens.csv (mode 0600); the upstream never sees a student's
token or headers. A tiny fake upstream checks the key and records what it was sent."""

from __future__ import annotations

import base64
import json
import logging
import stat
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import mai_image_nb as mai
from mai_image_nb import transport
from mai_image_nb.classroom import Classroom, Dashboard
from mai_image_nb.classroom.forward import REFUSED_KIND
from mai_image_nb.client import DEFAULT_USD_PER_IMAGE
from mai_image_nb.offline import render_png
from mai_image_nb.transport import USER_AGENT
from tests.waits import wait_until

from .conftest import TEACHER_KEY, admin_post, assert_no_gateway_threads, get, post

PNG = render_png("a canary", "1:1", 0, variation=0, scale=0.0625)


class _FakeUpstream(BaseHTTPRequestHandler):
    """Answers like the provider when the teacher's key is sent; echoes the key when asked."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[dict[str, str], bytes]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))  # type: ignore[attr-defined]
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        auth = self.headers.get("Authorization", "")
        prompt = json.loads(body).get("prompt", "")
        if auth != f"Bearer {TEACHER_KEY}":
            self._answer(401, {"message": "bad key"}, {})
        elif prompt == "no credits":  # the teacher's account is out of credits
            self._answer(403, {"message": "insufficient credits\n<b>top up</b>"},
                         {"x-request-id": "req-403"})  # fmt: skip
        elif prompt == "echo":  # a hostile or buggy service repeating the key back
            self._answer(500, {"message": f"you sent {auth}"}, {"x-echo": auth})
        elif prompt == "chunked":  # an answer whose length is not known up front
            data = json.dumps({"data": [{"b64_json": base64.b64encode(PNG).decode()}],
                               "meta": {"usage": {"usd_spent": 0.05}}}).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 1000):
                part = data[i : i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif prompt.startswith("coded "):  # "coded <coding> [<status>]": a compressed answer
            self._coded(auth, *prompt.split()[1:])
        elif prompt.startswith("hang up"):  # answer, then drop the kept-alive connection
            self._answer(
                200,
                {
                    "data": [{"b64_json": base64.b64encode(PNG).decode()}],
                    "meta": {"usage": {"credits_used": 1, "usd_spent": 0.05}},
                },
                {},
            )
            self.close_connection = True  # fmt: skip
        else:
            self._answer(200, {
                "data": [{"b64_json": base64.b64encode(PNG).decode()}],
                "meta": {"usage": {"credits_used": 1, "usd_spent": 0.05}},
                "echo": auth,
            }, {"x-request-id": auth})  # fmt: skip

    def _coded(self, auth: str, coding: str, status: str = "200") -> None:
        """An answer compressed whatever the request asked, as HTTP lets a server do when
        a request names no coding: gzip, deflate (zlib-wrapped), raw deflate ("raw" here),
        brotli ("br": bytes the gateway cannot read), a gzip cut short ("cut"), a gzip of
        zeros larger than the cap once decoded ("bomb"), and a coding named by the key."""
        image = {"data": [{"b64_json": base64.b64encode(PNG).decode()}],
                 "meta": {"usage": {"credits_used": 1, "usd_spent": 0.05}},
                 "echo": auth}  # a key repeated inside a compressed body is hidden too  # fmt: skip
        error = {"message": "the service is down"}
        payload = json.dumps(image if status == "200" else error).encode()
        data = {
            "gzip": lambda: zlib.compress(payload, wbits=31),
            "deflate": lambda: zlib.compress(payload),
            "raw": lambda: zlib.compress(payload, wbits=-15),
            "br": lambda: b"\x1b\x00\x00\x00 not brotli that we could read",
            "key": lambda: payload,  # the coding's name is the key: it must not be shown
            "cut": lambda: zlib.compress(payload, wbits=31)[:-20],
            "bomb": lambda: zlib.compress(b"0" * (transport.MAX_ANSWER_BYTES + 1), wbits=31),
        }[coding]()
        name = {"raw": "deflate", "cut": "gzip", "bomb": "gzip", "key": auth}.get(coding, coding)
        self.send_response(int(status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", name)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, code: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeUpstream)
    server.seen = []  # type: ignore[attr-defined]
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    server.server_close()


@pytest.fixture
def ada(fake: ThreadingHTTPServer, folder: Path) -> Iterator[tuple[Classroom, str]]:
    """A class over the fake upstream with one student, ada: the class and her token."""
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with Classroom(folder, upstream=url, api_key=TEACHER_KEY) as room:
        yield room, room.add_students(["ada"])["ada"]
    assert_no_gateway_threads()


def test_keys_and_tokens_stay_where_they_belong(
    fake: ThreadingHTTPServer, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    answers: list[tuple[int, str, str]] = []
    with Classroom(folder, upstream=url, api_key=TEACHER_KEY, budget_usd=1) as room:
        tokens = room.add_students(["ada", "bob"])
        admin = room.admin_token
        for prompt in ("a fox", "echo", "a cat"):
            r = post(room.url, tokens["ada"], {"prompt": prompt},
                     raw=None)  # fmt: skip
            answers.append((r.status_code, str(r.headers), r.text))
        for path in ("/classroom/me", "/classroom/students", "/classroom/gallery",
                     "/classroom/state"):  # fmt: skip
            for token in (tokens["bob"], admin):
                r = get(room.url, path, token)
                answers.append((r.status_code, str(r.headers), r.text))
        r = admin_post(room.url, "/classroom/students", admin, {"name": "cy"})
        answers.append((r.status_code, str(r.headers), r.text))
        tokens["cy"] = r.json()["token"]
        room.gateway.gallery.wait_idle()
        assert repr(room).find(TEACHER_KEY) == -1
    assert [a[0] for a in answers[:3]] == [200, 500, 200]
    assert "<hidden>" in answers[1][2]
    assert "x-request-id': 'Bearer <hidden>" in answers[0][1]  # headers passed on are scrubbed
    # The key: never in an answer, a header, a log record, or a file of the folder.
    for code, headers, text in answers:
        assert TEACHER_KEY not in headers and TEACHER_KEY not in text, code
    for record in caplog.records:
        assert TEACHER_KEY not in record.getMessage()
        assert not any(t in record.getMessage() for t in tokens.values())
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" for p in files)  # the gallery kept the image
    for file in files:
        data = file.read_bytes()
        assert TEACHER_KEY.encode() not in data, file
        for token in [*tokens.values()]:
            assert (token.encode() in data) == (file.name == "tokens.csv"), file
    for secret in ("tokens.csv", "admin-token"):
        assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600
    lines = (folder / "tokens.csv").read_text().splitlines()
    assert lines[0] == "name,token" and len(lines) == 4
    # The upstream saw the teacher's key only, and nothing of the students'.
    assert len(fake.seen) == 3  # type: ignore[attr-defined]
    for headers, body in fake.seen:  # type: ignore[attr-defined]
        assert headers["authorization"] == f"Bearer {TEACHER_KEY}"
        blob = json.dumps(headers) + body.decode()
        assert not any(t in blob for t in tokens.values())
        assert set(json.loads(body)) <= {"model", "prompt", "aspect_ratio", "temperature",
                                         "max_tokens", "max_completion_tokens"}  # fmt: skip
        assert "x-student" not in headers


def test_student_headers_are_not_forwarded(fake: ThreadingHTTPServer, folder: Path) -> None:
    import requests

    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with Classroom(folder, upstream=url, api_key=TEACHER_KEY) as room:
        token = room.add_students(["ada"])["ada"]
        with requests.Session() as s:
            r = s.post(room.url + "/v1/images/generations",
                       json={"model": "microsoft/mai-image-2.5", "prompt": "a fox"},
                       headers={"Authorization": f"Bearer {token}", "X-Student": "secret-note",
                                "Cookie": "session=abc"}, timeout=30)  # fmt: skip
        assert r.status_code == 200
    ((headers, body),) = fake.seen  # type: ignore[attr-defined]
    assert "x-student" not in headers and "cookie" not in headers
    # The whole request the service sees: the gateway writes its head itself.
    assert fake.paths == ["/v1/images/generations"]  # type: ignore[attr-defined]
    assert headers == {
        "host": f"127.0.0.1:{fake.server_address[1]}", "content-type": "application/json",
        "accept": "application/json", "accept-encoding": "identity", "user-agent": USER_AGENT,
        "authorization": f"Bearer {TEACHER_KEY}", "content-length": str(len(body)),
    }  # fmt: skip
    assert json.loads(body) == {"model": "microsoft/mai-image-2.5", "prompt": "a fox"}


def test_a_chunked_answer_is_passed_on_whole(fake: ThreadingHTTPServer, folder: Path) -> None:
    url = f"http://127.0.0.1:{fake.server_address[1]}/"
    with Classroom(folder, upstream=url, api_key=TEACHER_KEY) as room:
        token = room.add_students(["ada"])["ada"]
        answers = [post(room.url, token, {"prompt": "chunked"}) for _ in range(2)]  # kept alive
        (row,) = room.status()
    for answer in answers:
        assert answer.status_code == 200
        assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == PNG
    assert row["spent_usd"] == 0.1


def test_a_compressed_answer_reaches_the_student_decoded(
    fake: ThreadingHTTPServer, ada: tuple[Classroom, str]
) -> None:
    """The gateway asks for no compression; a service compressing anyway is decoded, since the
    student's client is told nothing of the coding (and the key, scrubbed from what the
    service sends, must be looked for in the decoded body). An error's message is decoded
    too."""
    room, token = ada
    answers = [post(room.url, token, {"prompt": f"coded {c}"}) for c in ("gzip", "deflate", "raw")]
    failed = post(room.url, token, {"prompt": "coded gzip 503"})
    (row,) = room.status()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "content-encoding" not in answer.headers
        assert base64.b64decode(answer.json()["data"][0]["b64_json"]) == PNG
        assert answer.json()["echo"] == "Bearer <hidden>"
    assert failed.status_code == 503
    assert failed.json() == {"message": "the service is down"}
    assert row["spent_usd"] == 0.15  # each charged what the service reported
    assert all(h["accept-encoding"] == "identity" for h, _ in fake.seen)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("coding", "says"),
    [("br", "coding the gateway cannot read: 'br'"), ("cut", "corrupt or cut short"),
     ("bomb", "over the cap"), ("key", "coding the gateway cannot read: an unknown one")],
)  # fmt: skip
def test_a_compressed_answer_that_cannot_be_read_is_a_502_charged_at_the_estimate(
    ada: tuple[Classroom, str], monkeypatch: pytest.MonkeyPatch, coding: str, says: str
) -> None:
    """A 2xx the gateway cannot decode was made, and so may have been paid for: the student
    hears why in one line and is charged the estimate, as for any unusable answer."""
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 256 * 1024)  # a small bomb will do
    room, token = ada
    answer = post(room.url, token, {"prompt": f"coded {coding}"})
    again = post(room.url, token, {"prompt": "coded gzip"})  # the connection still serves
    (row,) = room.status()
    assert answer.status_code == 502
    assert says in answer.json()["message"]
    assert TEACHER_KEY[3:13] not in answer.text.lower()  # no part of the key, in any case
    assert again.status_code == 200
    assert row["spent_usd"] == pytest.approx(DEFAULT_USD_PER_IMAGE + 0.05)


def test_an_error_answer_that_cannot_be_decoded_keeps_its_status(
    ada: tuple[Classroom, str],
) -> None:
    room, token = ada
    answer = post(room.url, token, {"prompt": "coded br 500"})
    (row,) = room.status()
    assert answer.status_code == 500
    assert answer.content == b""  # the undecodable message is dropped, the status stays
    assert row["spent_usd"] == 0.0  # the service reported no cost


def test_a_refused_class_key_is_not_blamed_on_the_student(
    fake: ThreadingHTTPServer, ada: tuple[Classroom, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The service refusing the teacher's account (403, no credits): passed on as it came,
    the student's client would call their own token wrong. The student hears whose problem
    it is, without a retry; the teacher's dashboard shows it (escaped) until an image comes
    through; the log says it once, and once again when it is over."""
    room, token = ada
    caplog.set_level(logging.INFO, logger="mai_image_nb.classroom")
    board = Dashboard(room.url, room.admin_token, refresh_s=0.05)
    try:
        with mai.Client(api_key=token, base_url=room.url, history=False, max_retries=3) as client:
            for _ in range(2):
                with pytest.raises(mai.AuthenticationError) as caught:
                    client.generate("no credits", cache=False)
        error = caught.value
        assert error.status_code == 403 and error.kind == REFUSED_KIND
        assert error.request_id == "req-403"  # the service's, for the teacher's report
        assert "not your token; tell your teacher" in error.message
        assert "insufficient credits" in error.message
        prompts = [json.loads(body)["prompt"] for _, body in fake.seen]  # type: ignore[attr-defined]
        assert prompts == ["no credits", "no credits"]  # neither retried
        wait_until(lambda: "refuses the class" in board.state_line.value, "the red line", 10)
        line = board.state_line.value
        assert "HTTP 403" in line and "&lt;b&gt;top up&lt;/b&gt;" in line and "<b>top" not in line
        assert "credits &lt;b&gt;" in line  # its line break is a space: one line, as in the log
        refused = get(room.url, "/classroom/state", room.admin_token).json()["upstream_refused"]
        assert refused["status"] == 403 and refused["message"].startswith("insufficient")

        assert post(room.url, token, {"prompt": "a fox"}).status_code == 200
        wait_until(lambda: "refuses" not in board.state_line.value, "the line to clear", 10)
        assert (
            get(room.url, "/classroom/state", room.admin_token).json()["upstream_refused"] is None
        )
        (row,) = room.status()
    finally:
        board.close()
    assert row["spent_usd"] == 0.05 and row["errors"] == 2  # the refusals cost nothing
    said = [r.getMessage() for r in caplog.records if "teacher's key" in r.getMessage()]
    assert len(said) == 2, said  # refused (once, for two refusals), then accepted again
    assert "refused" in said[0] and "accepts" in said[1] and "\n" not in said[0]


def test_a_wrong_class_key_is_a_401_that_says_so(fake: ThreadingHTTPServer, folder: Path) -> None:
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with Classroom(folder, upstream=url, api_key="sk-not-the-teachers") as room:
        token = room.add_students(["ada"])["ada"]
        answer = post(room.url, token, {"prompt": "a fox"})
        assert room.gateway.upstream_refused() is not None
    assert answer.status_code == 401
    assert answer.json()["error"]["data"]["kind"] == REFUSED_KIND
    assert "refused the class's key (HTTP 401: bad key)" in answer.json()["message"]
    assert "sk-not-the-teachers" not in answer.text


@pytest.mark.parametrize("key", [f"{TEACHER_KEY}\n", f"{TEACHER_KEY} x", "sk-\u00e9t\u00e9"])
def test_a_key_no_header_can_carry_is_refused_without_showing_it(folder: Path, key: str) -> None:
    with pytest.raises(mai.ValidationError) as caught:
        Classroom(folder, upstream="http://127.0.0.1:9", api_key=key)
    assert "api_key" in str(caught.value) and key.strip() not in str(caught.value)
    assert not folder.exists()  # refused before anything was made


def test_a_kept_alive_connection_the_service_closed_is_replaced_once(
    fake: ThreadingHTTPServer, ada: tuple[Classroom, str]
) -> None:
    room, token = ada
    codes = [post(room.url, token, {"prompt": f"hang up {i}"}).status_code for i in range(3)]
    (row,) = room.status()
    assert codes == [200, 200, 200]
    prompts = [json.loads(body)["prompt"] for _, body in fake.seen]  # type: ignore[attr-defined]
    assert prompts == ["hang up 0", "hang up 1", "hang up 2"]  # each sent once, none repeated
    assert row["spent_usd"] == 0.15
