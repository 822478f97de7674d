"""offline/handler.py alone: HTTP in front of any `SimulatorBackend`, here a small fake one.

The handler's only way to the simulation's state is the Protocol, so a fake that records what
it is asked proves the seam: the handler works against it with no `OfflineServer` at all.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mai_image_nb.offline import Fault
from mai_image_nb.offline.handler import ServedFile, SimulatorBackend, TrackedHTTPServer
from mai_image_nb.offline.schema import GENERATIONS_PATH, RecordedRequest
from mai_image_nb.offline.server import OfflineServer

JOIN_S = 10.0
PNG = b"\x89PNG\r\n\x1a\nnot really, but the handler does not look"
BODY = {"model": "microsoft/mai-image-2.5", "prompt": "a lamp"}


class FakeBackend:
    """Keeps what the handler asks for; answers from fixed values."""

    response_format = "url"
    latency_s = 0.0

    def __init__(self) -> None:
        self.port = 0
        self.calls: list[str] = []
        self.records: list[RecordedRequest] = []
        self.failures: list[BaseException] = []
        self.faults: list[Fault] = []
        self.images: dict[str, ServedFile] = {}
        self.threads: list[threading.Thread] = []
        self.reported_usd = 0.0
        self.key = "sk-fake"
        self.render_error: Exception | None = None

    def connection_opened(self, sock: Any, thread: threading.Thread) -> None:
        self.threads.append(thread)

    def connection_closed(self, sock: Any) -> None:
        self.calls.append("closed")

    def handler_failed(self, exc: BaseException) -> None:
        self.failures.append(exc)

    def record_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, sock: Any
    ) -> RecordedRequest:
        record = RecordedRequest(method, path, headers, body, json.loads(body or b"null"), 0.0)
        self.records.append(record)
        return record

    def next_fault(self) -> Fault | None:
        return self.faults.pop(0) if self.faults else None

    def pause(self, seconds: float) -> bool:
        return True

    def is_authorised(self, header: str | None) -> bool:
        self.calls.append(f"auth {header}")
        return header == f"Bearer {self.key}"

    def usage(self) -> dict[str, Any]:
        return {"credits_used": 7, "usd_spent": 0.5}

    def count_reported_usd(self, usd: float) -> None:
        self.reported_usd += usd

    def render(self, body: dict[str, Any]) -> bytes:
        self.calls.append(f"render {body['prompt']}")
        if self.render_error is not None:
            raise self.render_error
        return PNG

    def publish_image(self, file: ServedFile) -> str:
        self.images["img1"] = file
        return "img1"

    def find_image(self, file_id: str) -> ServedFile | None:
        return self.images.get(file_id)

    def image_url(self, file_id: str, host_header: str) -> str:
        return f"http://cdn.example/{file_id}.png?seen={host_header}"


def test_both_backends_satisfy_the_protocol() -> None:
    """Checked by mypy: these assignments fail type checking if either drifts from it."""
    fake: SimulatorBackend = FakeBackend()
    with OfflineServer() as server:
        real: SimulatorBackend = server
        assert fake.latency_s == real.latency_s == 0.0


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    httpd = TrackedHTTPServer(fake, ("127.0.0.1", 0))
    fake.port = httpd.server_address[1]
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        serving.join(JOIN_S)
        httpd.server_close()
        assert not serving.is_alive()
        for thread in fake.threads:
            thread.join(JOIN_S)
            assert not thread.is_alive()


def send(
    backend: FakeBackend, method: str, path: str, body: object = None, key: str | None = "sk-fake"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=JOIN_S)
    try:
        headers = {"Connection": "close", "Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        raw = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=raw, headers=headers)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_a_valid_post_is_recorded_rendered_published_and_charged(backend: FakeBackend) -> None:
    status, _, raw = send(backend, "POST", GENERATIONS_PATH, BODY)
    assert status == 200
    answer = json.loads(raw)
    assert answer["data"] == [{"url": f"http://cdn.example/img1.png?seen=127.0.0.1:{backend.port}"}]
    assert answer["meta"]["usage"] == {"credits_used": 7, "usd_spent": 0.5}
    assert backend.reported_usd == 0.5
    assert backend.images["img1"] == ServedFile(PNG, len(PNG))
    (record,) = backend.records
    assert (record.method, record.path, record.json) == ("POST", GENERATIONS_PATH, BODY)
    assert record.headers["authorization"] == "Bearer sk-fake"  # keyed in lower case
    assert "render a lamp" in backend.calls


def test_a_wrong_key_is_refused_before_rendering(backend: FakeBackend) -> None:
    status, _, raw = send(backend, "POST", GENERATIONS_PATH, BODY, key="sk-wrong")
    assert status == 401
    assert b"sk-wrong" not in raw
    assert not any(call.startswith("render") for call in backend.calls)
    assert backend.reported_usd == 0


def test_an_invalid_body_is_400_naming_the_field(backend: FakeBackend) -> None:
    status, _, raw = send(backend, "POST", GENERATIONS_PATH, {**BODY, "temperature": "hot"})
    assert status == 400
    assert "temperature" in json.loads(raw)["message"]


def test_the_backends_fault_answers_first(backend: FakeBackend) -> None:
    backend.faults.append(Fault.status(503, retry_after="2"))
    status, headers, _ = send(backend, "POST", GENERATIONS_PATH, BODY, key=None)
    assert status == 503  # a preemptive fault answers before the key check
    assert headers["Retry-After"] == "2"
    assert not any(call.startswith(("render", "auth")) for call in backend.calls)


def test_files_are_served_from_the_backend(backend: FakeBackend) -> None:
    backend.images["abc"] = ServedFile(b"12345", 12)
    status, headers, raw = send(backend, "GET", "/files/abc.png")
    assert (status, headers["Content-Type"], raw) == (200, "image/png", b"12345" + bytes(7))
    assert send(backend, "GET", "/files/nope.png")[0] == 404
    assert send(backend, "DELETE", "/files/abc.png")[0] == 405
    assert send(backend, "GET", "/elsewhere")[0] == 404


def test_a_failure_inside_is_handed_to_the_backend_and_answers_500(backend: FakeBackend) -> None:
    backend.render_error = RuntimeError("the renderer broke")
    status, _, _ = send(backend, "POST", GENERATIONS_PATH, BODY)
    assert status == 500
    assert [str(e) for e in backend.failures] == ["the renderer broke"]
    assert backend.reported_usd == 0
