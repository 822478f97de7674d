"""batch.py, through `generate_many`: input order, per-item errors, cancel, the budget rule."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer


@pytest.fixture
def client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=3) as c:
        yield c


def test_results_come_back_in_input_order(client: mai.Client) -> None:
    prompts = [f"a boat number {i}" for i in range(7)]
    results = client.generate_many(prompts, temperature=0, progress=False)
    assert [r.prompt for r in results if isinstance(r, mai.Generation)] == prompts


def test_an_invalid_item_is_an_error_in_its_slot_and_sends_nothing(
    client: mai.Client, server: OfflineServer
) -> None:
    items: list[str | dict[str, str]] = [
        "a hill",
        {"prompt": "a dune", "aspect_ratio": "7:3"},
        {"prompt": "a cave"},
    ]
    results = client.generate_many(items, aspect_ratio="16:9", progress=False)
    assert isinstance(results[1], mai.ValidationError)
    assert "aspect_ratio" in str(results[1])
    ok = [r for r in results if isinstance(r, mai.Generation)]
    assert [g.aspect_ratio for g in ok] == ["16:9", "16:9"]  # `common` applies to each item
    assert server.post_count == 2


def test_a_dict_item_overrides_common(client: mai.Client) -> None:
    results = client.generate_many(
        [{"prompt": "a reef", "temperature": 0.0}, "a reef"], temperature=1.5, progress=False
    )
    assert [r.temperature for r in results if isinstance(r, mai.Generation)] == [0.0, 1.5]


def test_a_set_cancel_sends_nothing(client: mai.Client, server: OfflineServer) -> None:
    cancel = threading.Event()
    cancel.set()
    results = client.generate_many(["a", "b"], cancel=cancel, progress=False)
    assert all(isinstance(r, mai.CancelledError) for r in results)
    assert server.post_count == 0


def test_the_budget_is_asked_before_anything_is_sent(server: OfflineServer, tmp_path: Path) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.1) as client:
        with pytest.raises(mai.BudgetExceededError):
            client.generate_many(["a", "b", "c"], progress=False)
        assert server.post_count == 0
