"""When to retry and how long to wait: Retry-After parsing, back-off with jitter, the shared gate.

Pure timing logic; the client owns the loop. Waiting goes through a `Clock`, so
tests can count delays without sleeping and Cancel ends any wait at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from .errors import CancelledError

__all__ = [
    "BACKOFF_INITIAL_S",
    "BACKOFF_MAX_S",
    "RETRY_AFTER_MAX_S",
    "BackoffGate",
    "Clock",
    "SystemClock",
    "backoff_delay",
    "is_retryable_status",
    "parse_retry_after",
]

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 8.0
BACKOFF_JITTER = 0.25  # each delay is cut by up to this fraction, at random
RETRY_AFTER_MAX_S = 120.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})


class Clock(Protocol):
    """Where time comes from and how to wait; swapped for a fake one in tests."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (to read HTTP dates)."""
        ...

    def wait(self, delay_s: float, cancel: threading.Event | None) -> bool:
        """Wait `delay_s`; return True at once if `cancel` is set meanwhile."""
        ...


class SystemClock:
    """The real clock: `time.monotonic` and `Event.wait`, never `time.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, delay_s: float, cancel: threading.Event | None) -> bool:
        event = cancel if cancel is not None else threading.Event()
        return event.wait(max(0.0, delay_s))


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and every 5xx are worth another try; 4xx otherwise are not."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def parse_retry_after(headers: Mapping[str, str], *, now_wall: float) -> float | None:
    """Seconds the server asked us to wait, or None when it asked nothing usable.

    `retry-after-ms` wins over `Retry-After`; the latter may be seconds or an HTTP
    date. Zero, negative, a past date or garbage mean "no usable answer" (None),
    so the caller falls back to its own back-off. `headers` must be case-insensitive.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = 0.0
        if seconds > 0 and seconds == seconds:  # NaN is not a delay
            return seconds
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime  # only HTTP dates need it: keep import light

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now_wall
    if not seconds > 0 or seconds == float("inf"):
        return None
    return seconds


def backoff_delay(attempt: int, *, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number `attempt` (0-based), with jitter.

    0.5 s doubling to a cap of 8 s, each cut by up to 25 % at random so the cells
    of a grid do not all retry in the same instant.
    """
    base = min(BACKOFF_INITIAL_S * (2.0 ** max(0, attempt)), BACKOFF_MAX_S)
    return base * (1.0 - BACKOFF_JITTER * rand())


class BackoffGate:
    """One per client: while any thread waits out a 429 or Retry-After, no thread sends."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open_at = 0.0

    def close_for(self, delay_s: float) -> None:
        """Hold every sender back for `delay_s` from now (never shortens a longer hold)."""
        with self._lock:
            self._open_at = max(self._open_at, self._clock.now() + delay_s)

    def remaining_s(self) -> float:
        with self._lock:
            return max(0.0, self._open_at - self._clock.now())

    def wait_open(self, cancel: threading.Event | None) -> None:
        """Return once the gate is open; raise CancelledError if cancelled while waiting."""
        while True:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled while waiting out a rate limit")
            remaining = self.remaining_s()
            if remaining <= 0:
                return
            if self._clock.wait(remaining, cancel):
                raise CancelledError("cancelled while waiting out a rate limit")
