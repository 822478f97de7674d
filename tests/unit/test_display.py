"""display.py, through what Jupyter is given: the PNG once, an escaped caption, text for terminals.

`shown` collects the MIME bundles an object hands to IPython, by `_ipython_display_` (which
publishes several outputs) or by the plain reprs, so these tests hold for either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import IPython.display
import pytest
from IPython.core.formatters import format_display_data

import mai_image_nb as mai
from mai_image_nb.display import escape
from mai_image_nb.offline import OfflineServer

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def shown(obj: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every MIME type the object shows, merged; each may appear only once."""
    if not hasattr(obj, "_ipython_display_"):
        plain: dict[str, Any] = format_display_data(obj)[0]
        return plain
    bundles: list[dict[str, Any]] = []

    def record(*objs: Any, raw: bool = False, **_: Any) -> None:
        assert raw, "only raw MIME bundles are published"
        bundles.extend(objs)

    monkeypatch.setattr(IPython.display, "display", record)
    obj._ipython_display_()
    merged: dict[str, Any] = {}
    for bundle in bundles:
        assert not set(bundle) & set(merged), f"{set(bundle) & set(merged)} shown twice"
        merged.update(bundle)
    return merged


@pytest.fixture
def client(server: OfflineServer) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=False) as c:
        yield c


def test_escape_covers_quotes_and_any_object() -> None:
    assert escape('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
    assert escape(3.5) == "3.5"


def test_a_generation_displays_as_png_and_escaped_html(
    client: mai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = client.generate(HOSTILE, temperature=0)
    data = shown(gen, monkeypatch)
    assert data["image/png"].startswith(b"\x89PNG")
    assert "text/plain" in data
    page = data["text/html"]
    assert "<script>" not in page and "<img src=x" not in page
    assert "base64," not in page  # the image is in the notebook once, as image/png
    assert escape(HOSTILE) in page  # the whole (short) prompt, escaped, as the caption
    assert "1:1" in page  # with the parameters


def test_a_long_prompt_is_shortened_in_the_caption(
    client: mai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = "a very long prompt " * 100
    gen = client.generate(prompt, temperature=0)
    data = shown(gen, monkeypatch)
    assert prompt not in data["text/html"]
    assert prompt[:100] in data["text/html"]


def test_a_comparison_displays_with_its_prompt_escaped(
    client: mai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = client.compare(HOSTILE, aspect_ratios=("1:1",), temperatures=(0.0,), progress=False)
    data = shown(grid, monkeypatch)
    assert data["image/png"]
    assert "<script>" not in data["text/html"]
    assert "&lt;script&gt;" in data["text/html"]


def test_captions_keep_dollars_as_text_for_mathjax() -> None:
    """A prompt with "$" beside the price must not pair up into a formula in Jupyter."""
    from mai_image_nb.display import caption_html, figure_html, no_math

    caption = "<b>a $5 bill</b> · $0.0627"
    for html_text in (caption_html(caption), figure_html(b"x", "image/png", caption, 64)):
        assert "$" not in html_text
        assert html_text.count("&#36;") == 2 and "mathjax_ignore" in html_text
    assert no_math(no_math(caption)) == no_math(caption) and no_math("") == ""
