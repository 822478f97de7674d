"""The teacher's Dashboard in-process (no kernel): escaping, no tokens, actions, its thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import ipywidgets as w

from mai_image_nb.classroom import Classroom, Dashboard
from tests.waits import wait_until

from .conftest import post

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_PROMPT = "<script>alert('x')</script> & a fox"


def _texts(widget: Any) -> Iterator[str]:
    """Every string any widget of the tree holds (values, descriptions, options)."""
    for name in ("value", "description", "placeholder", "tooltip"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            yield value
    for option in getattr(widget, "options", ()) or ():
        yield str(option)
    for child in getattr(widget, "children", ()) or ():
        yield from _texts(child)


def test_dashboard_escapes_never_shows_tokens_and_stops_its_thread(room: Classroom) -> None:
    tokens = room.add_students([HOSTILE_NAME, "ada"])
    assert post(room.url, tokens[HOSTILE_NAME], {"prompt": HOSTILE_PROMPT}).status_code == 200
    room.gateway.gallery.wait_idle()
    board = Dashboard(room.url, room.admin_token, refresh_s=0.05)
    try:
        assert isinstance(board, w.VBox)
        wait_until(lambda: "<figure>" in board.gallery.value, "the gallery", 10)
        html = board.table.value + board.gallery.value
        assert HOSTILE_NAME not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "data:image/png;base64," in board.gallery.value
        assert "0 upstream · 0 waiting" in board.state_line.value
        assert "cannot be written" not in board.state_line.value
        # Prices are text, never MathJax: no "$" pair anywhere, "&#36;" in its place.
        assert "&#36;" in board.table.value and "mathjax_ignore" in board.table.value
        assert "$" not in board.table.value + board.gallery.value + board.status_line.value
        everything = "\n".join(_texts(board))
        for secret in (*tokens.values(), room.admin_token):
            assert secret not in everything
        # Actions: add budget, revoke, add a student (whose token is then shown, once).
        board.student_picker.value = "ada"
        board.amount_box.value = 2.5
        board.add_budget_button.click()
        assert {s["name"]: s["budget_usd"] for s in room.status()}["ada"] == 3.5
        board.revoke_button.click()
        assert post(room.url, tokens["ada"], {"prompt": "x"}).status_code == 401
        board.name_box.value = "<b onmouseover=alert(2)>eve"
        board.add_student_button.click()
        made = {s["name"] for s in room.status()}
        assert "<b onmouseover=alert(2)>eve" in made
        shown = board.status_line.value
        assert "$" not in shown
        assert "&lt;b onmouseover=alert(2)&gt;eve" in shown and "<b onmouseover" not in shown
        new_token = shown.split("<code>")[1].split("</code>")[0]
        assert post(room.url, new_token, {"prompt": "a fox"}).status_code == 200
        everything = "\n".join(_texts(board))
        for secret in (*tokens.values(), room.admin_token):
            assert secret not in everything
        thread = board.thread
        assert thread.is_alive()
    finally:
        board.close()
    assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "classroom-dashboard"]


def test_dashboard_says_when_the_gateway_is_gone(room: Classroom) -> None:
    url, admin = room.url, room.admin_token
    board = Dashboard(url, admin, refresh_s=0.05)
    try:
        room.close()
        wait_until(lambda: "cannot reach" in board.status_line.value, "the error line", 10)
    finally:
        board.close()
    assert not board.thread.is_alive()
