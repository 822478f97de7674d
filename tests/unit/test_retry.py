"""Retry-After parsing, the back-off schedule and the shared gate, without sleeping."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict

from mai_image_nb.errors import CancelledError
from mai_image_nb.retry import (
    BACKOFF_MAX_S,
    BackoffGate,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
)
from tests.conftest import FastClock

NOW = 1_800_000_000.0


def headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(headers(retry_after="2"), 2.0, id="seconds"),
        pytest.param(headers(retry_after=" 1.5 "), 1.5, id="fraction"),
        pytest.param(headers(retry_after_ms="250"), 0.25, id="ms"),
        pytest.param(headers(retry_after_ms="250", retry_after="9"), 0.25, id="ms-wins"),
        pytest.param(headers(retry_after_ms="junk", retry_after="3"), 3.0, id="bad-ms"),
        pytest.param(headers(retry_after="0"), None, id="zero"),
        pytest.param(headers(retry_after="-4"), None, id="negative"),
        pytest.param(headers(retry_after="soon"), None, id="garbage"),
        pytest.param(headers(retry_after="inf"), None, id="inf"),
        pytest.param(headers(retry_after="nan"), None, id="nan"),
        pytest.param(headers(), None, id="absent"),
        pytest.param(headers(retry_after="600"), 600.0, id="long-is-reported"),
    ],
)
def test_parse_retry_after(given: CaseInsensitiveDict[str], expected: float | None) -> None:
    assert parse_retry_after(given, now_wall=NOW) == expected


def test_parse_retry_after_http_date() -> None:
    future = format_datetime(datetime.fromtimestamp(NOW + 30, tz=timezone.utc), usegmt=True)
    past = format_datetime(datetime.fromtimestamp(NOW - 30, tz=timezone.utc), usegmt=True)
    assert parse_retry_after(headers(retry_after=future), now_wall=NOW) == pytest.approx(30)
    assert parse_retry_after(headers(retry_after=past), now_wall=NOW) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_retryable(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 422])
def test_not_retryable(status: int) -> None:
    assert not is_retryable_status(status)


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_bounds(attempt: int) -> None:
    base = min(0.5 * 2**attempt, BACKOFF_MAX_S)
    assert backoff_delay(attempt, rand=lambda: 0.0) == base
    assert backoff_delay(attempt, rand=lambda: 0.999999) == pytest.approx(0.75 * base, rel=1e-5)
    for _ in range(50):
        assert 0.75 * base <= backoff_delay(attempt) <= base


def test_gate_holds_every_thread_and_can_be_cancelled() -> None:
    clock = FastClock()
    gate = BackoffGate(clock)
    gate.wait_open(None)  # open: returns at once
    assert clock.waits == []
    gate.close_for(2.0)
    gate.close_for(1.0)  # never shortens a longer hold
    assert gate.remaining_s() == pytest.approx(2.0, abs=0.05)
    gate.wait_open(None)
    assert sum(clock.waits) == pytest.approx(2.0, abs=0.05)
    gate.close_for(5.0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        gate.wait_open(cancel)
