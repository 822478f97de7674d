"""The offline simulator against its contract, over real loopback HTTP with `requests`."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

from mai_image_nb.offline import CHAOS_FAULTS, Chaos, Fault, OfflineServer, schema
from mai_image_nb.offline import server as server_module
from mai_image_nb.offline.handler import MAX_BODY_BYTES
from mai_image_nb.offline.render import canvas_size
from mai_image_nb.params import ASPECT_RATIOS, IMAGE_SIZES
from tests.waits import wait_until

from .conftest import SimFactory

MODEL = "microsoft/mai-image-2.5"
PATH = "/v1/images/generations"
REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 10.0  # no single wait in these tests may pass this


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a lighthouse at dusk", **fields}


def post(
    http: requests.Session, srv: OfflineServer, payload: Any = None, **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("timeout", DEADLINE_S)
    if "data" not in kwargs:
        kwargs["json"] = body() if payload is None else payload
    return http.post(srv.url + PATH, **kwargs)


def fetch_image(http: requests.Session, answer: dict[str, Any]) -> bytes:
    item = answer["data"][0]
    if item.get("b64_json") is not None:
        return base64.b64decode(item["b64_json"])
    got = http.get(item["url"], timeout=DEADLINE_S)
    assert got.status_code == 200, got.text
    return got.content


def generate(http: requests.Session, srv: OfflineServer, **fields: Any) -> bytes:
    answer = post(http, srv, body(**fields))
    assert answer.status_code == 200, answer.text
    return fetch_image(http, answer.json())


def mean_abs_diff(a: bytes, b: bytes) -> float:
    first, second = Image.open(io.BytesIO(a)), Image.open(io.BytesIO(b))
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


def assert_provider_error(answer: requests.Response, status: int, kind: str) -> str:
    """The provider's error shape; returns the message."""
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/json")
    payload = answer.json()
    assert payload["statusCode"] == status
    assert payload["error"]["data"]["kind"] == kind
    assert payload["error"]["message"] == payload["message"]
    assert payload["requestId"] == answer.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", payload["requestId"])
    return str(payload["message"])


# -- validation -------------------------------------------------------------------------------

INVALID = [
    pytest.param(body(model="dall-e-3"), "model", id="model-unknown"),
    pytest.param({"prompt": "a cat"}, "model", id="model-missing"),
    pytest.param(body(prompt=""), "prompt", id="prompt-empty"),
    pytest.param(body(prompt="x" * 4001), "prompt", id="prompt-4001"),
    pytest.param(body(prompt=7), "prompt", id="prompt-number"),
    pytest.param({"model": MODEL}, "prompt", id="prompt-missing"),
    pytest.param(body(aspect_ratio="5:4"), "aspect_ratio", id="ratio-unknown"),
    pytest.param(body(aspect_ratio=1), "aspect_ratio", id="ratio-number"),
    pytest.param(body(temperature=-0.1), "temperature", id="temperature-below"),
    pytest.param(body(temperature=2.1), "temperature", id="temperature-above"),
    pytest.param(body(temperature="1"), "temperature", id="temperature-string"),
    pytest.param(body(temperature=True), "temperature", id="temperature-bool"),
    pytest.param(body(temperature=None), "temperature", id="temperature-null"),
    pytest.param(body(max_tokens=0), "max_tokens", id="max_tokens-zero"),
    pytest.param(body(max_tokens=1.5), "max_tokens", id="max_tokens-float"),
    pytest.param(body(max_tokens=1.0), "max_tokens", id="max_tokens-1.0"),
    pytest.param(body(max_tokens=True), "max_tokens", id="max_tokens-bool"),
    pytest.param(body(max_completion_tokens=0), "max_completion_tokens", id="completion-zero"),
    pytest.param(body(max_completion_tokens="9"), "max_completion_tokens", id="completion-str"),
    pytest.param(["a cat"], "body", id="body-list"),
]


@pytest.mark.parametrize(("payload", "field"), INVALID)
def test_invalid_body_is_400_naming_the_field(
    sim: OfflineServer, http: requests.Session, payload: Any, field: str
) -> None:
    message = assert_provider_error(post(http, sim, payload), 400, "err_validation")
    assert field in message


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{not json", id="broken"),
        pytest.param(b"", id="empty"),
        pytest.param(
            b'{"model": "microsoft/mai-image-2.5", "prompt": "x", "temperature": NaN}', id="nan"
        ),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
def test_non_json_body_is_400(sim: OfflineServer, http: requests.Session, raw: bytes) -> None:
    answer = post(http, sim, data=raw, headers={"Content-Type": "application/json"})
    assert "JSON" in assert_provider_error(answer, 400, "err_validation")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"prompt": "x" * 4000}, id="prompt-4000"),
        pytest.param({"temperature": 0}, id="temperature-0"),
        pytest.param({"temperature": 2}, id="temperature-2-int"),
        pytest.param({"max_tokens": 1, "max_completion_tokens": 10**12}, id="token-limits"),
        pytest.param({"aspect_ratio": "2:3"}, id="ratio"),
        pytest.param({"style": "vivid"}, id="unknown-field-ignored"),
    ],
)
def test_edge_values_are_accepted(
    sim: OfflineServer, http: requests.Session, fields: dict[str, Any]
) -> None:
    answer = post(http, sim, body(**fields))
    assert answer.status_code == 200, answer.text


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-1, 3, allow_nan=False),
    st.text(max_size=3), st.sampled_from(["1:1", "5:4", MODEL, "x" * 4000, "x" * 4001]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()),
)  # fmt: skip
_FIELDS = ["model", "prompt", "aspect_ratio", "temperature", "max_tokens",
           "max_completion_tokens", "extra"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.dictionaries(st.sampled_from(_FIELDS), _VALUES), _VALUES))
def test_validation_agrees_with_jsonschema(candidate: Any) -> None:
    """The hand-written validator says what Draft 4 JSON Schema (as OpenAPI 3.0 uses) says."""
    jsonschema = pytest.importorskip("jsonschema")  # comes with schemathesis (dev extra)
    expected = jsonschema.Draft4Validator(schema.request_schema()).is_valid(candidate)
    assert (schema.validate_body(candidate) == []) == expected


# -- keys -------------------------------------------------------------------------------------


def test_api_key_is_required_when_set(sim_factory: SimFactory, http: requests.Session) -> None:
    key, wrong = "sk-right-7d1e", "sk-wrong-93ab"
    srv = sim_factory(api_key=key)
    for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": key}):
        answer = post(http, srv, headers=headers)
        assert_provider_error(answer, 401, "err_unauthorized")
        assert key not in answer.text and wrong not in answer.text
    assert post(http, srv, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert post(http, srv, headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_without_a_key_any_authorization_is_accepted(
    sim: OfflineServer, http: requests.Session
) -> None:
    assert post(http, sim).status_code == 200
    assert post(http, sim, headers={"Authorization": "Bearer anything"}).status_code == 200


# -- answers and images -----------------------------------------------------------------------


def test_url_answer_and_the_image_it_points_to(sim: OfflineServer, http: requests.Session) -> None:
    answer = post(http, sim, body(aspect_ratio="16:9"))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", answer.headers["x-request-id"])
    payload = answer.json()
    assert abs(payload["created"] / 1000 - time.time()) < 60
    assert payload["meta"] == {"usage": {"credits_used": 125367, "usd_spent": 0.0627}}
    [item] = payload["data"]
    assert set(item) == {"url"}
    assert item["url"].startswith(sim.url + "/files/") and item["url"].endswith(".png")
    got = http.get(item["url"], timeout=DEADLINE_S)
    assert got.headers["Content-Type"] == "image/png"
    assert int(got.headers["Content-Length"]) == len(got.content)
    assert Image.open(io.BytesIO(got.content)).size == canvas_size("16:9", 0.125)
    head = http.head(item["url"], timeout=DEADLINE_S)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(got.content))
    assert sim.reported_usd == pytest.approx(0.0627)


def test_b64_answer(sim_factory: SimFactory, http: requests.Session) -> None:
    srv = sim_factory(response_format="b64_json", usd_per_image=0.05, credits_per_image=10)
    answer = post(http, srv, body(aspect_ratio="3:4")).json()
    assert set(answer["data"][0]) == {"b64_json"}
    assert answer["meta"]["usage"] == {"credits_used": 10, "usd_spent": 0.05}
    image = Image.open(io.BytesIO(base64.b64decode(answer["data"][0]["b64_json"])))
    assert image.format == "PNG" and image.size == canvas_size("3:4", 0.125)


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_full_size_image_per_ratio(
    sim_factory: SimFactory, http: requests.Session, ratio: str
) -> None:
    srv = sim_factory(image_scale=1.0, response_format="b64_json")
    image = Image.open(io.BytesIO(generate(http, srv, aspect_ratio=ratio)))
    assert image.size == IMAGE_SIZES[ratio]
    assert image.mode == "RGB"


def test_temperature_zero_is_the_same_image_everywhere(
    sim_factory: SimFactory, http: requests.Session
) -> None:
    servers = [sim_factory(seed=1), sim_factory(seed=2), sim_factory()]
    images = [generate(http, srv, temperature=0) for srv in servers for _ in range(2)]
    assert len(set(images)) == 1


def test_temperature_two_differs_at_a_glance(sim: OfflineServer, http: requests.Session) -> None:
    first, second = (generate(http, sim, temperature=2.0) for _ in range(2))
    assert mean_abs_diff(first, second) > 10


def test_same_seed_repeats_a_run(sim_factory: SimFactory, http: requests.Session) -> None:
    calls: list[dict[str, Any]] = [
        {"temperature": 1.0},
        {"temperature": 0.4, "aspect_ratio": "9:16"},
        {},
    ]

    def run(seed: int) -> list[bytes]:
        srv = sim_factory(seed=seed)
        return [generate(http, srv, **fields) for fields in calls]

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))
    assert len(set(first)) == 3  # the same prompt twice still varies within a run


def test_every_request_is_recorded(sim: OfflineServer, http: requests.Session) -> None:
    generate(http, sim, temperature=0)
    post(http, sim, data=b"{", headers={"X-Trace": "t1"})
    http.get(sim.url + "/nowhere", timeout=DEADLINE_S)
    records = sim.requests
    assert [(r.method, r.path.split("/")[1]) for r in records] == [
        ("POST", "v1"), ("GET", "files"), ("POST", "v1"), ("GET", "nowhere"),
    ]  # fmt: skip
    assert records[0].json == body(temperature=0)
    assert json.loads(records[0].body) == body(temperature=0)
    assert records[2].json is None and records[2].headers["x-trace"] == "t1"
    assert all(k == k.lower() for r in records for k in r.headers)
    assert [r.time for r in records] == sorted(r.time for r in records)
    assert sim.post_count == 2
    sim.clear_requests()
    assert sim.requests == [] and sim.post_count == 0


def test_unknown_paths_and_methods(sim: OfflineServer, http: requests.Session) -> None:
    assert_provider_error(http.get(sim.url + "/v2/x", timeout=DEADLINE_S), 404, "err_not_found")
    wrong = http.get(sim.url + PATH, timeout=DEADLINE_S)
    assert_provider_error(wrong, 405, "err_method_not_allowed")
    assert wrong.headers["Allow"] == "POST"
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "QUERY"):
        assert http.request(method, sim.url + PATH, timeout=DEADLINE_S).status_code == 405
    assert http.post(sim.url + "/files/abc.png", timeout=DEADLINE_S).status_code == 405
    missing = http.get(sim.url + "/files/" + "0" * 32 + ".png", timeout=DEADLINE_S)
    assert_provider_error(missing, 404, "err_not_found")


def test_request_body_limits_and_chunked_bodies(sim: OfflineServer, http: requests.Session) -> None:
    huge = post(http, sim, data=b" " * (MAX_BODY_BYTES + 1))
    assert_provider_error(huge, 413, "err_payload_too_large")
    chunks = iter([json.dumps(body())[:10].encode(), json.dumps(body())[10:].encode()])
    chunked = post(http, sim, data=chunks, headers={"Content-Type": "application/json"})
    assert chunked.status_code == 200, chunked.text


def test_hostile_bodies_are_client_errors(sim: OfflineServer, http: requests.Session) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    assert_provider_error(post(http, sim, data=deep), 400, "err_validation")
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: {sim.url[7:]}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n{}\r\n0\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=DEADLINE_S) as raw:
        raw.sendall(request)
        assert raw.recv(64).startswith(b"HTTP/1.1 400 ")


def test_stored_images_are_bounded(
    sim: OfflineServer, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "MAX_STORED_IMAGES", 2)
    urls = [post(http, sim).json()["data"][0]["url"] for _ in range(3)]
    assert [http.get(u, timeout=DEADLINE_S).status_code for u in urls] == [404, 200, 200]


def test_image_server_plays_the_cdn(sim_factory: SimFactory, http: requests.Session) -> None:
    cdn = sim_factory()
    api = sim_factory(api_key="sk-cdn-test", image_server=cdn)
    answer = post(http, api, headers={"Authorization": "Bearer sk-cdn-test"}).json()
    url = answer["data"][0]["url"]
    assert url.startswith(cdn.url + "/files/")
    assert http.get(url, timeout=DEADLINE_S).status_code == 200
    assert [r.method for r in cdn.requests] == ["GET"]
    assert "authorization" not in cdn.requests[0].headers
    assert api.requests[0].headers["authorization"] == "Bearer sk-cdn-test"


def test_concurrent_requests(sim: OfflineServer) -> None:
    def one(i: int) -> bytes:
        with requests.Session() as session:
            return generate(session, sim, prompt=f"a cat number {i}")

    with ThreadPoolExecutor(8) as pool:
        images = list(pool.map(one, range(16)))
    assert len(set(images)) == 16
    assert sim.post_count == 16


def test_full_size_images_concurrently(sim_factory: SimFactory) -> None:
    """Full-size 1:1 images, four at a time: each whole and distinct. (How many a second is
    measured in bench/bench_client.py, `simulator_throughput`, not asserted here.)"""
    srv = sim_factory(image_scale=1.0)

    def one(i: int) -> bytes:
        with requests.Session() as session:
            return generate(session, srv, prompt=f"a red lighthouse {i} at sunset by the sea")

    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(one, range(8)))
    assert len(set(images)) == 8
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every byte there: a truncated PNG fails here
            assert image.size == IMAGE_SIZES["1:1"]


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        pytest.param(Fault.status(500), 500, "err_internal", id="500"),
        pytest.param(Fault.status(503, kind="err_busy", message="busy"), 503, "err_busy", id="503"),
        pytest.param(Fault.out_of_credits(), 403, "err_insufficent_credits", id="out-of-credits"),
    ],
)
def test_status_faults(
    sim: OfflineServer, http: requests.Session, fault: Fault, status: int, kind: str
) -> None:
    sim.script(fault)
    message = assert_provider_error(post(http, sim, {"not": "even valid"}), status, kind)
    assert message == fault.message
    assert sim.reported_usd == 0


def test_retry_after_headers_are_sent_verbatim(sim: OfflineServer, http: requests.Session) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    sim.script(Fault.status(429, retry_after="3"), Fault.status(429, retry_after=date),
               Fault.status(429, retry_after_ms=1250), Fault.status(429))  # fmt: skip
    answers = [post(http, sim) for _ in range(4)]
    assert [a.headers.get("Retry-After") for a in answers] == ["3", date, None, None]
    assert [a.headers.get("retry-after-ms") for a in answers] == [None, None, "1250", None]
    assert_provider_error(answers[3], 429, "err_rate_limit")


def test_html_error_page(sim: OfflineServer, http: requests.Session) -> None:
    sim.script(Fault.status(502, html=True))
    answer = post(http, sim)
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in answer.text


def test_raw_body_fault(sim: OfflineServer, http: requests.Session) -> None:
    sim.script(Fault.body(b"<xml/>", status=201, content_type="application/xml"))
    answer = post(http, sim)
    assert (answer.status_code, answer.content) == (201, b"<xml/>")
    assert answer.headers["Content-Type"] == "application/xml"


def test_truncated_json(sim: OfflineServer, http: requests.Session) -> None:
    sim.script(Fault.truncated_json())
    answer = post(http, sim)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    assert answer.text.startswith('{"created":')
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(answer.text)
    assert sim.reported_usd == 0


@pytest.mark.parametrize(
    ("fault", "data"),
    [
        pytest.param(Fault.empty_data(), [], id="empty"),
        pytest.param(Fault.null_data(), None, id="null"),
        pytest.param(Fault.null_image(), [{"url": None, "b64_json": None}], id="null-image"),
        pytest.param(Fault.bad_base64(), [{"b64_json": "this is not base64!"}], id="bad-base64"),
    ],
)
def test_charged_answers_without_an_image(
    sim: OfflineServer, http: requests.Session, fault: Fault, data: Any
) -> None:
    sim.script(fault)
    answer = post(http, sim).json()
    assert answer["data"] == data
    assert answer["meta"]["usage"]["usd_spent"] == 0.0627
    assert sim.reported_usd == pytest.approx(0.0627)


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_not_an_image(
    sim_factory: SimFactory, http: requests.Session, response_format: str
) -> None:
    srv = sim_factory(response_format=response_format)
    srv.script(Fault.not_an_image())
    data = fetch_image(http, post(http, srv).json())
    assert data.startswith(b"This is not an image")


def test_dead_url(sim: OfflineServer, http: requests.Session) -> None:
    sim.script(Fault.dead_url())
    url = post(http, sim).json()["data"][0]["url"]
    assert url.startswith(sim.url + "/files/")
    assert http.get(url, timeout=DEADLINE_S).status_code == 404


def test_bomb_is_a_small_png_claiming_a_huge_canvas(
    sim: OfflineServer, http: requests.Session
) -> None:
    sim.script(Fault.bomb(), Fault.bomb(20000, 10000))
    for width, height in ((30000, 30000), (20000, 10000)):
        data = base64.b64decode(post(http, sim).json()["data"][0]["b64_json"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        assert struct.unpack(">II", data[16:24]) == (width, height)
        assert len(data) < 200_000


def test_oversized_image(sim: OfflineServer, http: requests.Session) -> None:
    n_bytes = 3 * 1024 * 1024 + 7
    sim.script(Fault.oversized(n_bytes))
    url = post(http, sim).json()["data"][0]["url"]
    with http.get(url, stream=True, timeout=DEADLINE_S) as got:
        assert int(got.headers["Content-Length"]) == n_bytes
        chunks = list(got.iter_content(256 * 1024))
    assert sum(map(len, chunks)) == n_bytes and chunks[0].startswith(b"\x89PNG")


def test_oversized_body_abandoned_by_the_client(sim: OfflineServer, http: requests.Session) -> None:
    """A client that stops reading a huge body must not count as a server error."""
    sim.script(Fault.oversized(64 * 1024 * 1024))
    url = post(http, sim).json()["data"][0]["url"]
    with requests.get(url, stream=True, timeout=DEADLINE_S) as got:
        assert len(next(got.iter_content(1024))) == 1024
    assert post(http, sim).status_code == 200  # and the server carries on


def test_slow_answers_normally_after_the_wait(sim: OfflineServer, http: requests.Session) -> None:
    sim.script(Fault.slow(0.3), Fault.slow(5.0))
    started = time.monotonic()
    assert post(http, sim).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.ReadTimeout):
        post(http, sim, timeout=0.2)


def test_latency(sim: OfflineServer, http: requests.Session) -> None:
    sim.set_latency(0.25)
    started = time.monotonic()
    assert post(http, sim).status_code == 200
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize(
    "fault", [Fault.drop_connection(), Fault.stall(0.2)], ids=["drop", "stall"]
)
def test_hang_ups(sim: OfflineServer, http: requests.Session, fault: Fault) -> None:
    sim.script(fault)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        post(http, sim)
    assert time.monotonic() - started >= fault.seconds
    assert post(http, sim).status_code == 200
    assert sim.reported_usd == pytest.approx(0.0627)


def test_scripted_faults_are_used_in_order_then_normal(
    sim: OfflineServer, http: requests.Session
) -> None:
    sim.script(Fault.status(503), Fault.status(429, retry_after="1"))
    sim.script(Fault.empty_data())
    assert sim.pending_faults == 3
    answers = [post(http, sim) for _ in range(5)]
    assert [a.status_code for a in answers] == [503, 429, 200, 200, 200]
    assert answers[2].json()["data"] == []
    assert all(len(a.json()["data"]) == 1 for a in answers[3:])
    assert sim.pending_faults == 0


def test_faults_that_reshape_an_answer_still_check_key_and_body(
    sim_factory: SimFactory, http: requests.Session
) -> None:
    srv = sim_factory(api_key="k")
    srv.script(Fault.empty_data(), Fault.empty_data(), Fault.status(500))
    assert post(http, srv).status_code == 401  # the key is checked first; the fault is spent
    assert (
        post(http, srv, {"model": MODEL}, headers={"Authorization": "Bearer k"}).status_code == 400
    )
    assert post(http, srv).status_code == 500  # a status fault answers whatever was sent


def test_fault_constructors_reject_nonsense() -> None:
    for make in (lambda: Fault.status(99), lambda: Fault.slow(-1), lambda: Fault.oversized(0),
                 lambda: Fault.bomb(0, 5), lambda: Chaos(rate=1.5),
                 lambda: Chaos(rate=0.5, faults=("meteor",))):  # fmt: skip
        with pytest.raises(ValueError, match=r"must|use|choose|status"):
            make()


def _outcome(http: requests.Session, srv: OfflineServer) -> str:
    """What one POST met, in a word, following image URLs with HEAD."""
    try:
        answer = post(http, srv, timeout=2.0)
    except requests.ConnectionError:
        return "hang-up"
    if answer.status_code != 200:
        html = answer.headers["Content-Type"].startswith("text/html")
        return f"{answer.status_code}{'-html' if html else ''}"
    try:
        data = answer.json()["data"]
    except ValueError:
        return "truncated"
    if not data:
        return "empty"
    head = http.head(data[0]["url"], timeout=DEADLINE_S)
    if head.status_code == 404:
        return "dead-url"
    if int(head.headers["Content-Length"]) > 10**6:
        return "oversized"
    image = http.get(data[0]["url"], timeout=DEADLINE_S).content
    return "image" if image.startswith(b"\x89PNG") else "not-an-image"


def test_chaos_with_a_seed_is_reproducible(sim_factory: SimFactory, http: requests.Session) -> None:
    def run(seed: int, rate: float, n: int) -> list[str]:
        srv = sim_factory(chaos=Chaos(rate=rate, seed=seed, stall_s=0.0))
        return [_outcome(http, srv) for _ in range(n)]

    first, again, other = run(3, 0.5, 30), run(3, 0.5, 30), run(4, 0.5, 30)
    assert first == again != other
    assert 5 <= sum(o != "image" for o in first) <= 25
    named = {"429": "rate_limit", "hang-up": "stall", "truncated": "truncated_json",
             "empty": "empty_data", "not-an-image": "not_an_image", "oversized": "oversized",
             "dead-url": "dead_url"}  # fmt: skip
    seen = {
        named.get(o, "html_error" if o.endswith("-html") else "server_error")
        for o in run(1, 1.0, 60)
    }
    assert seen == set(CHAOS_FAULTS)


def test_chaos_rate_limit_headers(sim_factory: SimFactory, http: requests.Session) -> None:
    srv = sim_factory(chaos=Chaos(rate=1.0, seed=0, faults=("rate_limit",), retry_after_s=1.5))
    answer = post(http, srv)
    assert answer.status_code == 429
    assert (answer.headers["Retry-After"], answer.headers["retry-after-ms"]) == ("2", "1500")


# -- rate-limit windows -----------------------------------------------------------------------


def test_rate_limit_window_answers_429_with_the_time_left(
    sim: OfflineServer, http: requests.Session
) -> None:
    url = post(http, sim).json()["data"][0]["url"]
    before = time.monotonic()
    sim.rate_limit(5.0)
    answers = [post(http, sim, {"not": "even valid"}) for _ in range(2)]
    elapsed_ms = (time.monotonic() - before) * 1000
    waits = []
    for answer in answers:
        assert_provider_error(answer, 429, "err_rate_limit")
        wait_ms = int(answer.headers["retry-after-ms"])
        assert 5000 - elapsed_ms <= wait_ms <= 5000
        assert answer.headers["Retry-After"] == str(math.ceil(wait_ms / 1000))
        waits.append(wait_ms)
    assert waits[1] <= waits[0]  # the time left shrinks
    assert http.get(url, timeout=DEADLINE_S).status_code == 200  # images are still served
    assert sim.post_count == 3
    assert sim.reported_usd == pytest.approx(0.0627)  # the 429s charged nothing


def test_rate_limit_with_a_fixed_wait_lets_scripted_faults_go_first(
    sim: OfflineServer, http: requests.Session
) -> None:
    sim.rate_limit(5.0, retry_after_s=1.5)
    sim.script(Fault.status(503), Fault.empty_data())
    answers = [post(http, sim) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 200, 429]
    assert answers[1].json()["data"] == []
    assert (answers[2].headers["Retry-After"], answers[2].headers["retry-after-ms"]) == (
        "2",
        "1500",
    )
    sim.rate_limit(0)  # ends the window
    assert post(http, sim).status_code == 200


def test_rate_limit_ends_with_its_window(sim: OfflineServer, http: requests.Session) -> None:
    window_s = 0.3
    before = time.monotonic()
    sim.rate_limit(window_s)
    limited = [post(http, sim)]
    while limited[-1].status_code == 429:
        assert time.monotonic() - before < DEADLINE_S, "the window never ended"
        threading.Event().wait(0.02)
        limited.append(post(http, sim))
    answer = limited.pop()
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - before >= window_s  # not before the window ends
    assert limited, "the first POST, sent at once, should have met the window"
    assert all(int(a.headers["retry-after-ms"]) <= window_s * 1000 for a in limited)
    assert {a.headers["Retry-After"] for a in limited} == {"1"}


def test_rate_limit_rejects_nonsense(sim: OfflineServer) -> None:
    for seconds, retry_after_s in ((-1.0, None), (math.inf, None), (1.0, -0.5), (math.nan, 1.0)):
        with pytest.raises(ValueError, match="must be a finite number"):
            sim.rate_limit(seconds, retry_after_s=retry_after_s)


# -- connections and shutdown -----------------------------------------------------------------


def test_keep_alive_reuses_one_connection(sim: OfflineServer, http: requests.Session) -> None:
    first = post(http, sim)
    assert first.raw.version == 11
    http.get(first.json()["data"][0]["url"], timeout=DEADLINE_S)
    post(http, sim)
    assert sim.connection_count == 1
    assert {r.connection for r in sim.requests} == {1}
    with requests.Session() as other:
        post(other, sim)
    assert sim.connection_count == 2 and sim.requests[-1].connection == 2


def test_close_is_prompt_idempotent_and_leaves_nothing(sim_factory: SimFactory) -> None:
    srv = sim_factory()
    port = srv.port
    idle, waiting = requests.Session(), requests.Session()
    try:
        post(idle, srv)  # leaves a keep-alive connection open on the server
        srv.script(Fault.slow(30.0))
        stuck = threading.Thread(target=_expect_hang_up, args=(waiting, srv), daemon=True)
        stuck.start()
        wait_until(lambda: srv.post_count == 2, "the slow POST to arrive", DEADLINE_S)
        started = time.monotonic()
        srv.close()
        srv.close()
        assert time.monotonic() - started < 3.0
        stuck.join(DEADLINE_S)
        assert not stuck.is_alive()
        names = {f"offline-server-{port}", f"offline-server-{port}-conn"}
        assert not [t for t in threading.enumerate() if t.name in names]
        with pytest.raises(requests.ConnectionError):
            post(idle, srv, timeout=2.0)
        with pytest.raises(RuntimeError, match="closed"):
            srv.start()
    finally:
        idle.close()
        waiting.close()


def _expect_hang_up(session: requests.Session, srv: OfflineServer) -> None:
    with pytest.raises(requests.ConnectionError):
        post(session, srv)


def test_start_is_idempotent_and_url_needs_a_port() -> None:
    srv = OfflineServer()
    with pytest.raises(RuntimeError, match="start"):
        _ = srv.url
    with srv:
        assert srv.start() is srv
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.url)
        assert srv.port == int(srv.url.rsplit(":", 1)[1])
    srv.close()
    OfflineServer().close()  # closing a server never started is fine


def test_handler_errors_are_recorded_and_answered_500(
    monkeypatch: pytest.MonkeyPatch, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(server_module, "render_png", broken)
    with OfflineServer(image_scale=0.125) as srv:
        answer = post(http, srv)
    assert_provider_error(answer, 500, "err_internal")
    assert [str(e) for e in srv.errors] == ["renderer broke"]
    assert any("handler failed" in r.getMessage() for r in caplog.records)


# -- bundled schema and command line ----------------------------------------------------------


def test_bundled_schema_is_the_shared_one() -> None:
    shared = REPO.parent / "shared" / "api" / "openapi.json"
    if not shared.exists():
        pytest.skip("../shared/api/openapi.json is not beside this checkout")
    assert schema.SCHEMA_PATH.read_bytes() == shared.read_bytes()


def test_command_line_serves_until_interrupted(http: requests.Session) -> None:
    command = [sys.executable, "-m", "mai_image_nb.offline", "--port", "0", "--seed", "3",
               "--api-key", "sk-cli-secret", "--b64", "--scale", "0.125"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30.0), "the simulator printed nothing"
        line = proc.stdout.readline().decode()
        assert "sk-cli-secret" not in line
        url = re.search(r"AIMLAPI_BASE_URL=(http://127\.0\.0\.1:\d+)", line)
        assert url, line
        answer = http.post(url.group(1) + PATH, json=body(), timeout=DEADLINE_S,
                           headers={"Authorization": "Bearer sk-cli-secret"})  # fmt: skip
        assert answer.status_code == 200 and "b64_json" in answer.json()["data"][0]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE_S) == 0
        assert b"stopped" in proc.stdout.read()
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=DEADLINE_S)
        proc.stdout.close()
        proc.stderr.close()
