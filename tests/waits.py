"""Bounded polling shared by the test layers: every wait has a deadline, none guesses a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

POLL_S = 0.005  # the pause between two looks; cheap reads only (widget state, a file, a count)


def wait_until(predicate: Callable[[], object], what: str, timeout_s: float) -> None:
    """Poll `predicate` until it is true; fail naming `what` once `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        pause.wait(POLL_S)
