"""Bounded waits and small checks shared by the widget tests."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

from PIL import Image

from mai_image_nb.studio import Studio
from tests import waits

DEADLINE_S = 20.0


def wait_idle(studio: Studio, timeout_s: float = DEADLINE_S) -> None:
    assert studio.wait_idle(timeout_s), f"the Studio did not become idle within {timeout_s} s"


def wait_until(predicate: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    """`tests.waits.wait_until` with this layer's deadline."""
    waits.wait_until(predicate, what, timeout_s)


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


def visible(html_value: str) -> str:
    """The text a browser shows for `html_value`: tags dropped, entities decoded, spaces joined."""
    import html as html_module
    import re

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html_value)).split())
