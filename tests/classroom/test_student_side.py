"""What a student sees: 402 as BudgetExceededError (not retried), and the Studio header's class
budget line from `GET /classroom/me` (absent, and asked once, when there is no gateway)."""

from __future__ import annotations

import pytest

import mai_image_nb as mai
from mai_image_nb.classroom import Classroom
from mai_image_nb.offline import OfflineServer
from mai_image_nb.studio.panel import Header

from .conftest import PRICE


def test_402_is_a_budget_error_with_the_servers_message_and_not_retried(
    room: Classroom, upstream: OfflineServer
) -> None:
    token = room.add_students(["ada"], budget_usd=PRICE)["ada"]
    with mai.Client(api_key=token, base_url=room.url, history=False, max_retries=3) as client:
        client.generate("one")
        with pytest.raises(mai.BudgetExceededError) as caught:
            client.generate("two")
        assert isinstance(caught.value, mai.APIStatusError) and caught.value.status_code == 402
        assert "class budget of $0.06 for ada is used up" in str(caught.value)
        assert client.spent_usd == PRICE  # the refused call cost the student nothing
    assert upstream.post_count == 1
    assert room.status()[0]["errors"] == 1  # one 402, answered once: no retries


def test_studio_header_shows_the_class_budget_left(room: Classroom) -> None:
    token = room.add_students(["ada"], budget_usd=2.0)["ada"]
    with mai.Client(api_key=token, base_url=room.url, history=False) as client:
        client.generate("a fox")
        header = Header(client)
        try:
            assert "class budget &#36;1.94 left of &#36;2.00" in header.value  # MathJax-safe $
        finally:
            header.close()


def test_studio_header_without_a_gateway_asks_once_and_shows_nothing(
    upstream: OfflineServer,
) -> None:
    with mai.Client(api_key="k", base_url=upstream.url, history=False) as client:
        header = Header(client)
        try:
            header.refresh()
            header.refresh()
            assert "class budget" not in header.value
        finally:
            header.close()
    asked = [r for r in upstream.requests if r.path == "/classroom/me"]
    assert len(asked) == 1
    assert asked[0].headers.get("authorization") == "Bearer k"  # only ever to base_url
