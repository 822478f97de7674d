"""HTML injection: no markup from a user or a server ever reaches HTML as markup.

The check is differential: the tags and attribute names of every HTML a display path makes
are the same (for pure renderers) or a subset (for the whole panel) of what a plain text
gives, and the hostile text shows up as visible text. Paths: `Generation._repr_html_`,
`generation.generation_caption`, `Comparison._repr_html_`, the Studio's status lines, details,
captions, cell errors and gallery, with user text and with error bodies a server controls
(`message`, `kind`, `requestId`). tests/widgets/test_panel.py holds the one-payload version.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mai_image_nb as mai
from mai_image_nb import display, errors
from mai_image_nb.comparison import Cell, Comparison
from mai_image_nb.generation import Generation, generation_caption
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.studio import Studio
from mai_image_nb.studio.frontend import KEYS_HTML, KeyListener, reveal_html
from mai_image_nb.studio.gallery import Revealer, caption_html
from mai_image_nb.studio.grid import CellView
from mai_image_nb.studio.widgets import (
    ConfirmRow,
    Tone,
    close_tree,
    details_html,
    error_text,
    one_line,
    status_html,
    walk,
)
from tests.unit.crash_writer import make_generation
from tests.waits import wait_until
from tests.widgets.helpers import assert_no_studio_threads, wait_idle

from .helpers import HtmlShape, html_shape

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "</figcaption></figure><b onmouseover=alert(1)>x</b>",
    "</div></span><div class=mai-status-ok>✓ fake</div>",
    "<style>*{display:none}</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<a href="javascript:alert(1)">click</a>',
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "\u202e<script>alert(1)</script>",
    "<img src=x onerror=alert(1)//",
    "{{7*7}} ${7*7} <%= 7*7 %>",
]
ALL_AT_ONCE = " ".join(XSS)
BENIGN = "a lighthouse at dusk"
DEADLINE_S = 30.0
TONES: tuple[Tone, ...] = ("idle", "busy", "ok", "error", "warn")

hostile_text = st.sampled_from(XSS) | st.text(min_size=1, max_size=300)


def _gen(prompt: str, gid: str = "20260101-000000-abcd", **params: Any) -> Generation:
    return make_generation(gid, prompt, **params)


def _assert_same_shape(render: Callable[[str], str], text: str) -> None:
    """`render(text)` has exactly the tags and attribute names of `render(BENIGN)`."""
    benign_shape, _ = html_shape(render(BENIGN))
    shape, _ = html_shape(render(text))
    assert shape == benign_shape, (text, shape)


# -- the pure renderers, with hypothesis text ---------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(text=hostile_text)
def test_generation_caption_and_repr_html_escape_any_prompt(text: str) -> None:
    _assert_same_shape(lambda t: generation_caption(_gen(t)), text)
    _assert_same_shape(lambda t: generation_caption(_gen(t, sample=3)), text)
    _, visible = html_shape(generation_caption(_gen(text)))
    assert display.short_prompt(text) in visible
    _assert_same_shape(lambda t: _gen(t)._repr_html_(), text)


@settings(max_examples=25, deadline=None)
@given(prompt=hostile_text, message=hostile_text)
def test_comparison_repr_html_escapes_its_prompt_and_errors(prompt: str, message: str) -> None:
    def render(text: str) -> str:
        good = _gen(text)
        cells = [
            Cell(text, "1:1", 0.5, 0, generation=good),
            Cell(text, "1:1", 1.5, 0, error=errors.APIStatusError(message, status_code=400)),
        ]
        comparison = Comparison(
            prompts=(text,),
            aspect_ratios=("1:1",),
            temperatures=(0.5, 1.5),
            repeats=1,
            cells=cells,
            rerun=lambda *a, **k: comparison,
        )
        return comparison._repr_html_()

    _assert_same_shape(render, prompt)


def _server_error(text: str) -> errors.APIStatusError:
    return errors.APIStatusError(text, status_code=400, request_id=text, kind=text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text)
def test_panel_renderers_escape_user_and_server_text(text: str) -> None:
    _assert_same_shape(lambda t: details_html(_gen(t, max_tokens=64)), text)
    _assert_same_shape(lambda t: caption_html(_gen(t)), text)
    for tone in TONES:
        _assert_same_shape(functools.partial(status_html, tone), text)
    _, visible = html_shape(status_html("error", text))
    assert one_line(text) in visible
    _assert_same_shape(lambda t: status_html("error", error_text(_server_error(t))), text)
    _assert_same_shape(
        lambda t: status_html("error", error_text(errors.ValidationError(t, t, t))), text
    )
    _assert_same_shape(lambda t: status_html("error", error_text(RuntimeError(t))), text)


@pytest.fixture(scope="module")
def cell_view() -> Iterator[CellView]:
    view = CellView(("a prompt", "1:1", 0.5, 0), repeats=1, on_open=lambda _view: None)
    yield view
    close_tree(view)


@pytest.fixture(scope="module")
def confirm_row() -> Iterator[ConfirmRow]:
    row = ConfirmRow(yes="Yes", no="No")
    yield row
    close_tree(row)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile_text)
def test_grid_cells_and_questions_escape_any_text(
    cell_view: CellView, confirm_row: ConfirmRow, text: str
) -> None:
    def cell_error(t: str) -> str:
        cell_view.show_error(errors.MaiImageError(t))
        return str(cell_view.caption.value)

    def question(t: str) -> str:
        confirm_row.ask(t, t)
        return str(confirm_row.question.value)

    _assert_same_shape(cell_error, text)
    _assert_same_shape(question, text)


# -- the whole panel, driven in-process ------------------------------------------------------------


def _panel_html(studio: Studio) -> list[str]:
    """Every HTML value of the panel except its own fixed pieces: the stylesheet, and the
    browser scripts of frontend.py (checked here to be their constant text, no user text)."""
    values = []
    for widget in walk(studio):
        if not isinstance(widget, (w.HTML, w.HTMLMath)) or widget is studio.style_sheet:
            continue
        if isinstance(widget, KeyListener):
            assert widget.value == KEYS_HTML
        elif isinstance(widget, Revealer):
            assert widget.value in ("", reveal_html(widget.count))
        else:
            values.append(str(widget.value))
    return values


def _error_body(text: str) -> bytes:
    """An error answer whose every field a hostile server chose."""
    fields = {
        "message": text,
        "requestId": text,
        "error": {"message": text, "data": {"kind": text}},
    }
    return json.dumps(fields).encode()


def drive_panel(studio: Studio, server: OfflineServer, text: str, workdir: Path) -> list[str]:
    """Put `text` through every place the panel shows user or server text; its HTML after."""
    seen: list[str] = []
    gen_tab, cmp_tab, hist = studio.generate, studio.compare, studio.history
    prompt = text[:4000]

    gen_tab.prompt_box.value = prompt
    gen_tab.ratio_picker.value = "16:9"
    gen_tab.generate_button.click()
    wait_idle(studio, DEADLINE_S)
    assert gen_tab.generation is not None and gen_tab.generation.prompt == prompt
    seen += _panel_html(studio)

    server.script(Fault.body(_error_body(text), status=400))  # the server's own words
    gen_tab.temperature_slider.value = 0.3
    gen_tab.generate_button.click()
    wait_idle(studio, DEADLINE_S)
    assert "mai-status-error" in gen_tab.status_line.value
    seen.append(gen_tab.status_line.value)

    gen_tab.max_tokens_box.value = text  # validated as typed: the message is under the field
    seen.append(gen_tab.inputs.notes["max_tokens"].value)
    gen_tab.max_tokens_box.value = ""

    for name in (f"{text}.png", "saved.png"):  # a name with "/" fails, the other saves
        gen_tab.temperature_slider.value = 1.0
        gen_tab.filename_box.value = name
        gen_tab.save_button.click()
        wait_idle(studio, DEADLINE_S)
        seen.append(gen_tab.status_line.value)

    cmp_tab.prompt_box.value = prompt
    cmp_tab.ratio_toggles.value = ("1:1",)
    cmp_tab.temperatures_box.value = text  # an invalid list: the estimate line says why
    seen.append(cmp_tab.inputs.notes["temperatures"].value)
    cmp_tab.temperatures_box.value = "0.5, 1.5"
    server.script(Fault.body(_error_body(text), status=400))
    cmp_tab.run_button.click()
    wait_idle(studio, DEADLINE_S)
    assert [v.state for v in cmp_tab.cell_views].count("failed") == 1
    seen += _panel_html(studio)

    hist.filter_box.value = text
    wait_idle(studio, DEADLINE_S)
    seen.append(hist.count_line.value)
    hist.filter_box.value = ""
    wait_idle(studio, DEADLINE_S)
    wait_until(lambda: len(hist.visible()) >= 2, "the gallery to show the images", DEADLINE_S)
    hist.tiles[0].view_button.click()
    hist.tiles[0].select_box.value = True
    hist.tiles[1].select_box.value = True
    hist.side_by_side_button.click()
    hist.export_folder_box.value = str(workdir / ("export-" + text.replace("\x00", "")))
    hist.export_button.click()
    wait_idle(studio, DEADLINE_S)
    hist.delete_button.click()
    seen += _panel_html(studio)
    hist.cancel_delete()
    return seen


@pytest.fixture
def panel(client: mai.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    monkeypatch.chdir(tmp_path)  # Save writes into the working folder
    studio = Studio(client, page_size=4)
    try:
        yield studio
    finally:
        wait_idle(studio, DEADLINE_S)
        studio.close()
        assert_no_studio_threads(DEADLINE_S)


_BENIGN_PANEL: list[HtmlShape] = []


def _benign_panel_tags(server: OfflineServer, tmp_path: Path) -> set[tuple[str, tuple[str, ...]]]:
    """The tags the panel uses when all text is plain (computed once per session)."""
    if not _BENIGN_PANEL:
        home = tmp_path / "benign"
        with mai.Client(base_url=server.url, history=home / "history", timeout=10) as client:
            studio = Studio(client, page_size=4)
            try:
                _BENIGN_PANEL.extend(
                    html_shape(v)[0] for v in drive_panel(studio, server, BENIGN, home)
                )
            finally:
                wait_idle(studio, DEADLINE_S)
                studio.close()
    return {tag for shape in _BENIGN_PANEL for tag in shape}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(ALL_AT_ONCE, id="every-payload-at-once"),
        pytest.param(XSS[1], id="attribute-breakout"),
        pytest.param(XSS[13], id="unterminated-tag"),
        pytest.param(XSS[5], id="fake-status"),
    ],
)
def test_no_markup_reaches_the_panel(
    panel: Studio, server: OfflineServer, tmp_path: Path, text: str
) -> None:
    allowed = _benign_panel_tags(server, tmp_path)
    seen = drive_panel(panel, server, text, tmp_path / "work")
    for value in seen:
        shape, _ = html_shape(value)
        assert set(shape) <= allowed, (set(shape) - allowed, value[:500])
        lowered = value.lower()
        for raw in ("<script", "<img", "<svg", "<iframe", "<a ", "<math", "<style"):
            assert raw not in lowered, (raw, value[:500])
    assert any("&lt;" in value for value in seen)  # the text was shown, escaped
