"""Bounded waits and small checks shared by the widget tests."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

from PIL import Image

from mai_image_nb.studio import Studio

DEADLINE_S = 20.0


def wait_idle(studio: Studio, timeout_s: float = DEADLINE_S) -> None:
    assert studio.wait_idle(timeout_s), f"the Studio did not become idle within {timeout_s} s"


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll `predicate` (a cheap read of widget state) until true, up to a deadline."""
    deadline = time.monotonic() + timeout_s
    wake = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        wake.wait(0.005)


def assert_no_studio_threads(timeout_s: float = DEADLINE_S) -> None:
    def alive() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("mai-studio")]

    wait_until(lambda: not alive(), "the Studio's threads to end", timeout_s)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG, asserting that it is one."""
    assert data, "no image bytes"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG", image.format
        return image.size


def one_line(html_value: str) -> bool:
    return "\n" not in html_value and "<br" not in html_value
