"""The report and the gallery escape any text: the page's shape never depends on a prompt."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mai_image_nb import errors
from mai_image_nb.comparison import Cell, Comparison
from mai_image_nb.export import record_of
from mai_image_nb.report import comparison_html, gallery_html
from tests.reliability.helpers import html_shape
from tests.unit.crash_writer import make_generation

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table><b onmouseover=alert(1)>x</b>",
    "<style>*{background:url(//evil.example/x)}</style>",
    '<a href="https://evil.example">x</a>',
    "&lt;script&gt; ${7*7} $$x$$",
]
hostile = st.sampled_from(XSS) | st.text(min_size=1, max_size=200)
BENIGN = "a lighthouse at dusk"


def grid(prompt: str, message: str) -> Comparison:
    cells = [
        Cell(prompt, "1:1", 0.5, 0, generation=make_generation("g1", prompt, temperature=0.5)),
        Cell(prompt, "1:1", 1.5, 0, error=errors.APIStatusError(message, status_code=400)),
    ]
    return Comparison(prompts=(prompt,), aspect_ratios=("1:1",), temperatures=(0.5, 1.5),
                      repeats=1, cells=cells, rerun=lambda *a, **k: None)  # type: ignore[arg-type]  # fmt: skip


def shape(markup: str) -> Any:
    return html_shape(markup)[0]


@settings(max_examples=30, deadline=None)
@given(prompt=hostile, message=hostile)
def test_the_report_has_one_shape_whatever_the_prompt_and_error(prompt: str, message: str) -> None:
    page = comparison_html(grid(prompt, message))
    assert shape(page) == shape(comparison_html(grid(BENIGN, BENIGN)))
    assert prompt in html_shape(page)[1]  # shown as text, exactly


@settings(max_examples=30, deadline=None)
@given(prompt=hostile, name=hostile)
def test_the_gallery_has_one_shape_whatever_the_prompt_and_file(prompt: str, name: str) -> None:
    def page(text: str, file: str) -> str:
        return gallery_html([record_of(make_generation("g1", text), file)], title=text)

    assert shape(page(prompt, name)) == shape(page(BENIGN, "a.png"))
    for _tag, attrs in shape(page(prompt, name)):
        assert not any(a.startswith("on") for a in attrs)
