"""The panel's browser-side pieces as the kernel builds them: Ctrl+Enter and the lightbox's reveal.

What they do in a browser is tested in tests/e2e/test_browser.py; here, that each tab is marked
for the listener, that exactly one listener widget is drawn per panel, and that the scripts are
fixed text (no user text, no `$` for MathJax to pair).
"""

from __future__ import annotations

import html
import re

import ipywidgets as w

from mai_image_nb.studio import Studio
from mai_image_nb.studio.frontend import (
    PROMPT_CLASS,
    REVEAL_CLASS,
    SCOPE_CLASS,
    SUBMIT_CLASS,
    KeyListener,
    reveal_html,
)
from mai_image_nb.studio.widgets import walk

from .helpers import wait_idle


def _handler(markup: str) -> str:
    match = re.search(r'onerror="([^"]*)"', markup)
    assert match, markup
    return html.unescape(match.group(1))


def test_ctrl_enter_presses_the_button_of_its_own_tab(studio: Studio) -> None:
    generate, compare = studio.generate, studio.compare
    for tab, prompt, button in (
        (generate, generate.prompt_box, generate.generate_button),
        (compare, compare.prompt_box, compare.run_button),
    ):
        assert SCOPE_CLASS in tab._dom_classes
        assert PROMPT_CLASS in prompt._dom_classes
        assert SUBMIT_CLASS in button._dom_classes
        assert "Ctrl+Enter" in button.tooltip
    assert generate.generate_button.tooltip == "Generate (Ctrl+Enter)"
    # one scope per tab: the History tab and the header have none, and one button per scope
    scopes = [x for x in walk(studio) if SCOPE_CLASS in getattr(x, "_dom_classes", ())]
    assert sorted(map(id, scopes)) == sorted(map(id, (generate, compare)))
    for scope in scopes:
        marked = [x for x in walk(scope) if SUBMIT_CLASS in getattr(x, "_dom_classes", ())]
        assert len(marked) == 1


def test_one_listener_widget_per_panel_drawn_invisibly(studio: Studio) -> None:
    listeners = [x for x in walk(studio) if isinstance(x, KeyListener)]
    assert listeners == [studio.key_listener]
    assert studio.key_listener in studio.children  # a direct child of the `.mai-studio` root
    assert studio.key_listener.layout.display == "none"
    script = _handler(studio.key_listener.value)
    assert "addEventListener('keydown'" in script and ", true);" in script  # capture phase
    assert "closest('.mai-studio')" in script and "root.maiCtrlEnter" in script  # once a root
    for name in (PROMPT_CLASS, SCOPE_CLASS, SUBMIT_CLASS):
        assert f".{name}'" in script


def test_the_scripts_are_fixed_text_whatever_the_user_typed(studio: Studio) -> None:
    before = studio.key_listener.value
    studio.generate.prompt_box.value = 'a "quoted" <b>bold</b> $5 hat'
    studio.generate.generate_button.click()
    wait_idle(studio)
    assert studio.key_listener.value == before
    for markup in (before, reveal_html(1), reveal_html(2)):
        assert "$" not in markup and "quoted" not in markup
        assert markup.count("<img") == 1 and 'src="data:,"' in markup


def test_a_new_reveal_is_drawn_each_time() -> None:
    assert reveal_html(1) != reveal_html(2)
    assert _handler(reveal_html(1)) == _handler(reveal_html(2))
    assert isinstance(KeyListener(), w.HTML)


def test_the_lightbox_and_the_large_view_come_into_view_each_time_they_open(
    studio: Studio,
) -> None:
    studio.generate.prompt_box.value = "a lighthouse at dusk"
    studio.generate.generate_button.click()
    wait_idle(studio)
    gen = studio.generate.generation
    assert gen is not None
    large = studio.history.detail_view
    for box, open_it in (
        (studio.lightbox, lambda: studio.show_full(gen)),
        (large, lambda: large.show(gen, b"")),
    ):
        assert REVEAL_CLASS in box._dom_classes
        assert "mai-reveal-close" in box.close_button._dom_classes
        assert box.reveal.value == ""
        open_it()
        first = box.reveal.value
        open_it()  # the same image again: drawn again, so the script runs again
        assert first and box.reveal.value != first and _handler(first) == _handler(box.reveal.value)
        assert box.reveal.layout.display == "none"
        box.hide()
        assert box.reveal.value == ""
