"""display.py, through what Jupyter asks for: PNG and HTML reprs, user text always escaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.formatters import format_display_data

import mai_image_nb as mai
from mai_image_nb.display import escape
from mai_image_nb.offline import OfflineServer

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


@pytest.fixture
def client(server: OfflineServer) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=False) as c:
        yield c


def test_escape_covers_quotes_and_any_object() -> None:
    assert escape('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
    assert escape(3.5) == "3.5"


def test_a_generation_displays_as_png_and_escaped_html(client: mai.Client) -> None:
    gen = client.generate(HOSTILE, temperature=0)
    data, _ = format_display_data(gen)
    assert data["image/png"]
    assert "text/plain" in data
    page = data["text/html"]
    assert "<script>" not in page and "<img src=x" not in page
    assert escape(HOSTILE) in page  # the whole (short) prompt, escaped, as the caption
    assert "1:1" in page  # with the parameters


def test_a_long_prompt_is_shortened_in_the_caption(client: mai.Client) -> None:
    prompt = "a very long prompt " * 100
    gen = client.generate(prompt, temperature=0)
    data, _ = format_display_data(gen)
    assert prompt not in data["text/html"]
    assert prompt[:100] in data["text/html"]


def test_a_comparison_displays_with_its_prompt_escaped(client: mai.Client) -> None:
    grid = client.compare(HOSTILE, aspect_ratios=("1:1",), temperatures=(0.0,), progress=False)
    data, _ = format_display_data(grid)
    assert data["image/png"]
    assert "<script>" not in data["text/html"]
    assert "&lt;script&gt;" in data["text/html"]
