"""The client against the simulator over real loopback HTTP: errors, retries, answers."""

from __future__ import annotations

import base64
import io
import json
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.params import ASPECT_RATIOS, IMAGE_SIZES
from tests.conftest import FastClock

# -- validation: nothing is sent -----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"prompt": ""}, id="empty"),
        pytest.param({"prompt": "x" * 4001}, id="4001"),
        pytest.param({"prompt": "a", "aspect_ratio": "2:1"}, id="ratio"),
        pytest.param({"prompt": "a", "temperature": 2.5}, id="temp"),
        pytest.param({"prompt": "a", "temperature": False}, id="temp-bool"),
        pytest.param({"prompt": "a", "max_tokens": 0}, id="tokens"),
        pytest.param({"prompt": "a", "max_completion_tokens": True}, id="mct-bool"),
    ],
)
def test_invalid_input_sends_nothing(
    client: mai.Client, server: OfflineServer, kwargs: dict[str, object]
) -> None:
    with pytest.raises(mai.ValidationError):
        client.generate(**kwargs)  # type: ignore[arg-type]
    assert server.post_count == 0


invalid_values = st.one_of(
    st.fixed_dictionaries({"prompt": st.just("")}),
    st.fixed_dictionaries({"prompt": st.text(min_size=4001, max_size=4100)}),
    st.fixed_dictionaries(
        {
            "prompt": st.just("ok"),
            "aspect_ratio": st.text().filter(lambda r: r not in ASPECT_RATIOS),
        }
    ),
    st.fixed_dictionaries(
        {
            "prompt": st.just("ok"),
            "temperature": st.one_of(
                st.floats().filter(lambda t: not 0 <= t <= 2),
                st.booleans(),
                st.text(),
                st.none(),
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "prompt": st.just("ok"),
            "max_tokens": st.one_of(st.integers(max_value=0), st.booleans(), st.floats()),
        }
    ),
    st.fixed_dictionaries(
        {
            "prompt": st.just("ok"),
            "max_completion_tokens": st.one_of(
                st.integers(max_value=0), st.booleans(), st.floats(), st.text()
            ),
        }
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kwargs=invalid_values)
def test_hypothesis_invalid_inputs_never_reach_the_server(
    client: mai.Client, server: OfflineServer, kwargs: dict[str, object]
) -> None:
    with pytest.raises(mai.ValidationError) as info:
        client.generate(**kwargs)  # type: ignore[arg-type]
    assert info.value.field in kwargs
    assert server.post_count == 0


valid_values = st.fixed_dictionaries(
    {
        "prompt": st.text(min_size=1, max_size=300),
        "aspect_ratio": st.sampled_from(ASPECT_RATIOS),
        "temperature": st.floats(min_value=0, max_value=2),
    },
    optional={
        "max_tokens": st.integers(min_value=1, max_value=2**31),
        "max_completion_tokens": st.integers(min_value=1, max_value=2**31),
        "sample": st.integers(min_value=0, max_value=5),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kwargs=valid_values)
def test_hypothesis_valid_inputs_are_accepted_by_the_simulator(
    client: mai.Client, server: OfflineServer, kwargs: dict[str, object]
) -> None:
    generation = client.generate(cache=False, **kwargs)  # type: ignore[arg-type]
    assert generation.prompt == kwargs["prompt"]
    body = [r.json for r in server.requests if r.method == "POST"][-1]
    assert body is not None
    assert "sample" not in body


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retried_statuses_use_every_attempt(
    client: mai.Client, server: OfflineServer, status: int
) -> None:
    server.script(*[Fault.status(status)] * 4)
    with pytest.raises(errors.APIStatusError) as info:
        client.generate("a cat", cache=False)
    assert info.value.status_code == status
    assert server.post_count == 4  # 1 + max_retries


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_retry_then_success(client: mai.Client, server: OfflineServer, status: int) -> None:
    server.script(Fault.status(status), Fault.status(status))
    generation = client.generate("a cat", cache=False)
    assert generation.width > 0
    assert server.post_count == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, errors.APIStatusError, id="400"),
        pytest.param(401, errors.AuthenticationError, id="401"),
        pytest.param(403, errors.AuthenticationError, id="403"),
        pytest.param(404, errors.APIStatusError, id="404"),
        pytest.param(422, errors.APIStatusError, id="422"),
    ],
)
def test_never_retried_statuses(
    client: mai.Client, server: OfflineServer, status: int, cls: type[Exception]
) -> None:
    server.script(Fault.status(status))
    with pytest.raises(cls) as info:
        client.generate("a cat", cache=False)
    assert type(info.value) is cls
    assert server.post_count == 1


def test_max_retries_zero_means_one_attempt(server: OfflineServer, tmp_path: Path) -> None:
    with mai.Client(base_url=server.url, history=False, max_retries=0) as c:
        c._use_clock(FastClock())
        server.script(Fault.status(503))
        with pytest.raises(errors.APIStatusError):
            c.generate("a cat")
    assert server.post_count == 1


def test_429_after_retries_is_rate_limit_error(client: mai.Client, server: OfflineServer) -> None:
    server.script(*[Fault.status(429, retry_after="1")] * 4)
    with pytest.raises(errors.RateLimitError):
        client.generate("a cat", cache=False)
    assert client._clock.waits == [1.0, 1.0, 1.0]  # type: ignore[attr-defined]


def _http_date(seconds_from_now: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    return format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("fault", "expected_wait"),
    [
        pytest.param(Fault.status(429, retry_after="3"), 3.0, id="seconds"),
        pytest.param(Fault.status(503, retry_after="7.5"), 7.5, id="503-seconds"),
        pytest.param(Fault.status(429, retry_after_ms="1250"), 1.25, id="ms"),
        pytest.param(Fault.status(429, retry_after="120"), 120.0, id="cap-inclusive"),
    ],
)
def test_retry_after_is_waited_in_full(
    client: mai.Client, server: OfflineServer, fault: Fault, expected_wait: float
) -> None:
    server.script(fault)
    client.generate("a cat", cache=False)
    assert client._clock.waits == [pytest.approx(expected_wait)]  # type: ignore[attr-defined]


def test_retry_after_as_http_date(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.status(429, retry_after=_http_date(30)))
    client.generate("a cat", cache=False)
    [wait] = client._clock.waits  # type: ignore[attr-defined]
    assert 27 <= wait <= 31


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0", id="zero"),
        pytest.param("soon", id="garbage"),
        pytest.param(_http_date(-60), id="past"),
    ],
)
def test_unusable_retry_after_falls_back_to_backoff(
    client: mai.Client, server: OfflineServer, value: str
) -> None:
    server.script(Fault.status(429, retry_after=value))
    client.generate("a cat", cache=False)
    assert client._clock.waits == [0.5]  # type: ignore[attr-defined]  # rand=0: the full first step


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(429, errors.RateLimitError, id="429"),
        pytest.param(503, errors.APIStatusError, id="503"),
    ],
)
def test_retry_after_over_120s_ends_at_once(
    client: mai.Client, server: OfflineServer, status: int, cls: type[Exception]
) -> None:
    server.script(Fault.status(status, retry_after="121"))
    with pytest.raises(cls) as info:
        client.generate("a cat", cache=False)
    assert server.post_count == 1
    assert "121" in str(info.value)
    assert client._clock.waits == []  # type: ignore[attr-defined]


def test_backoff_schedule_doubles_to_the_cap(server: OfflineServer) -> None:
    clock = FastClock()
    with mai.Client(base_url=server.url, history=False, max_retries=6) as c:
        c._use_clock(clock, rand=lambda: 0.0)
        server.script(*[Fault.status(500)] * 7)
        with pytest.raises(errors.APIStatusError):
            c.generate("a cat")
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_backoff_jitter_stays_in_bounds(server: OfflineServer) -> None:
    clock = FastClock()
    with mai.Client(base_url=server.url, history=False, max_retries=5) as c:
        c._use_clock(clock)  # real jitter
        server.script(*[Fault.status(502)] * 6)
        with pytest.raises(errors.APIStatusError):
            c.generate("a cat")
    for attempt, wait in enumerate(clock.waits):
        base = min(0.5 * 2**attempt, 8.0)
        assert 0.75 * base <= wait <= base


def test_backoff_wait_can_be_cancelled(server: OfflineServer) -> None:
    """A real (not fake) back-off wait ends at once when the cancel event is set."""
    cancel = threading.Event()
    with mai.Client(base_url=server.url, history=False) as c:
        server.script(Fault.status(429, retry_after="60"))

        result: list[BaseException] = []

        def run() -> None:
            try:
                c.generate("a cat", cache=False, cancel=cancel)
            except BaseException as exc:
                result.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        deadline = threading.Event()
        for _ in range(500):
            if c._calls.gate.remaining_s() > 0:
                break
            deadline.wait(0.01)
        cancel.set()
        worker.join(timeout=5)
        assert not worker.is_alive()
    assert isinstance(result[0], errors.CancelledError)
    assert server.post_count == 1


# -- error bodies ------------------------------------------------------------------------


def test_provider_error_shape_is_read(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.out_of_credits())
    with pytest.raises(errors.AuthenticationError) as info:
        client.generate("a cat", cache=False)
    err = info.value
    assert err.status_code == 403
    assert err.kind == "err_insufficent_credits"
    assert err.request_id
    assert err.message and "HTTP" not in err.message


def test_plain_message_shape(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.body(b'{"message": "prompt rejected by policy"}', status=400))
    with pytest.raises(errors.APIStatusError) as info:
        client.generate("a cat", cache=False)
    assert info.value.message == "prompt rejected by policy"
    assert info.value.status_code == 400


def test_html_error_page_gives_the_status_line(client: mai.Client, server: OfflineServer) -> None:
    server.script(*[Fault.status(502, html=True)] * 4)
    with pytest.raises(errors.APIStatusError) as info:
        client.generate("a cat", cache=False)
    assert info.value.message == "Bad Gateway"
    assert "<" not in str(info.value)


def test_simulator_validation_400_message_is_shown(
    client: mai.Client, server: OfflineServer
) -> None:
    from mai_image_nb.transport import Reply, post_json

    with requests.Session() as session:
        reply = post_json(
            session, server.url + "/v1/images/generations", {"model": "x"}, auth=None, timeout_s=5
        )
    assert isinstance(reply, Reply)
    assert reply.status == 400
    body = json.loads(reply.body)
    assert body["requestId"]


# -- unusable 2xx answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.truncated_json(), id="truncated-json"),
        pytest.param(Fault.body(b"<html>ok</html>", content_type="text/html"), id="html-200"),
        pytest.param(Fault.body(b"[1, 2]"), id="json-list"),
        pytest.param(Fault.body(b'{"meta": {}}'), id="no-data"),
        pytest.param(Fault.empty_data(), id="empty-data"),
        pytest.param(Fault.null_data(), id="null-data"),
        pytest.param(Fault.null_image(), id="null-url-and-b64"),
        pytest.param(Fault.bad_base64(), id="bad-base64"),
        pytest.param(Fault.not_an_image(), id="not-an-image"),
        pytest.param(Fault.dead_url(), id="dead-url"),
        pytest.param(Fault.bomb(), id="decompression-bomb"),
        pytest.param(Fault.oversized(51 * 1024 * 1024), id="oversized"),
        pytest.param(Fault.body(b'{"data": ["x"]}'), id="data-item-not-object"),
        pytest.param(Fault.body(b'{"data": [{"url": "ftp://x/y.png"}]}'), id="ftp-url"),
    ],
)
def test_unusable_2xx_is_response_error(
    client: mai.Client, server: OfflineServer, fault: Fault
) -> None:
    server.script(fault)
    with pytest.raises(errors.ResponseError):
        client.generate("a cat", cache=False)
    assert server.post_count == 1  # a 2xx may have been charged: never sent again


def test_non_image_formats_are_refused(client: mai.Client, server: OfflineServer) -> None:
    for fmt in ("TIFF", "BMP", "GIF"):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format=fmt)
        b64 = base64.b64encode(buffer.getvalue()).decode()
        server.script(Fault.body(json.dumps({"data": [{"b64_json": b64}]}).encode()))
        with pytest.raises(errors.ResponseError, match="PNG, JPEG or WebP"):
            client.generate("a cat", cache=False)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_are_kept_as_received(
    client: mai.Client, server: OfflineServer, fmt: str
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(buffer, format=fmt)
    raw = buffer.getvalue()
    body = {
        "data": [{"b64_json": base64.b64encode(raw).decode()}],
        "meta": {"usage": {"credits_used": 1, "usd_spent": 0.01}},
    }
    server.script(Fault.body(json.dumps(body).encode()))
    generation = client.generate("a cat", cache=False)
    assert generation.data == raw
    assert generation.image_format == fmt.lower()
    assert (generation.width, generation.height) == (64, 48)
    saved = generation.save(Path(client.history.path) / "out.png")  # type: ignore[union-attr]
    assert mai.read_params(saved)["prompt"] == "a cat"


def test_usage_of_a_failed_answer_is_still_counted(
    client: mai.Client, server: OfflineServer
) -> None:
    server.script(Fault.dead_url())
    with pytest.raises(errors.ResponseError):
        client.generate("a cat", cache=False)
    assert client.spent_usd == pytest.approx(0.0627)


# -- network failures -------------------------------------------------------------------


def test_timeout_is_retried_then_api_timeout_error(server: OfflineServer) -> None:
    with mai.Client(base_url=server.url, history=False, timeout=0.2, max_retries=1) as c:
        c._use_clock(FastClock())
        server.script(Fault.slow(2.0), Fault.slow(2.0))
        with pytest.raises(errors.APITimeoutError) as info:
            c.generate("a cat")
    assert "2 attempts" in str(info.value)
    assert server.post_count == 2


def test_connection_refused_is_api_connection_error() -> None:
    with OfflineServer() as srv:
        url = srv.url
    with mai.Client(base_url=url, history=False, max_retries=2) as c:
        c._use_clock(FastClock())
        with pytest.raises(errors.APIConnectionError) as info:
            c.generate("a cat")
    assert not isinstance(info.value, errors.APITimeoutError)
    assert "3 attempts" in str(info.value)


def test_dropped_connection_is_retried(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.drop_connection())
    assert client.generate("a cat", cache=False).width > 0
    assert server.post_count == 2


# -- success ----------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_sizes_follow_the_ratio(client: mai.Client, ratio: str) -> None:
    generation = client.generate("a boat on the sea", aspect_ratio=ratio, temperature=0)
    width, height = IMAGE_SIZES[ratio]
    assert (generation.width, generation.height) == (round(width * 0.125), round(height * 0.125))
    assert generation.image.size == (generation.width, generation.height)


def test_b64_answers(tmp_path: Path) -> None:
    with (
        OfflineServer(response_format="b64_json", image_scale=0.125) as srv,
        mai.Client(base_url=srv.url, history=False) as c,
    ):
        generation = c.generate("a cat")
        assert generation.url is None
        assert generation.image_format == "png"


def test_generation_fields_and_usage(client: mai.Client) -> None:
    generation = client.generate("a lighthouse", aspect_ratio="16:9", temperature=0.7, max_tokens=5)
    assert generation.usage == mai.Usage(credits_used=125367, usd_spent=0.0627)
    assert generation.created.tzinfo is not None
    assert generation.url and generation.url.startswith("http://127.0.0.1")
    assert generation.model == "microsoft/mai-image-2.5"
    assert generation.max_tokens == 5 and generation.max_completion_tokens is None
    assert generation.elapsed_s >= 0
    assert not generation.cached
    record = generation.to_dict()
    json.dumps(record)
    assert record["prompt"] == "a lighthouse"
    assert client.spent_usd == pytest.approx(0.0627)
    assert client.estimate(3) == pytest.approx(3 * 0.0627)


def test_reprs_escape_the_prompt(client: mai.Client) -> None:
    generation = client.generate('<img src=x onerror="alert(1)"><script>x</script>')
    html = generation._repr_html_()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    assert generation._repr_png_().startswith(b"\x89PNG")
