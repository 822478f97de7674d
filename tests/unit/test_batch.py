"""batch.py, through `generate_many`: input order, per-item errors, cancel, the budget rule.

Grids (the other user of batch.py) are tested in tests/contract/test_compare.py.
"""

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


def test_generate_many_order_overrides_and_invalid_slots(
    server: OfflineServer, client: mai.Client
) -> None:
    results = client.generate_many(
        [
            "a cat",
            {"prompt": "a dog", "aspect_ratio": "9:16"},
            {"prompt": ""},
            {"prompt": "a cow", "temperature": 9},
            {"prompt": "an eel", "colour": "red"},
            "a bee",
        ],
        aspect_ratio="16:9",
        temperature=0.3,
        progress=False,
    )
    assert server.post_count == 3
    cat, dog, empty, cow, eel, bee = results
    assert isinstance(cat, mai.Generation) and cat.aspect_ratio == "16:9" and cat.temperature == 0.3
    assert isinstance(dog, mai.Generation) and dog.aspect_ratio == "9:16"
    assert isinstance(empty, mai.ValidationError) and empty.field == "prompt"
    assert isinstance(cow, mai.ValidationError) and cow.field == "temperature"
    assert isinstance(eel, mai.ValidationError)
    assert isinstance(bee, mai.Generation) and bee.prompt == "a bee"


def test_generate_many_budget_counts_uncached_only(server: OfflineServer, tmp_path: Path) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.2) as c:
        c.generate_many(["a", "b", "c"], progress=False)
        with pytest.raises(mai.BudgetExceededError):
            c.generate_many(["a", "b", "c", "d"], progress=False)
        assert server.post_count == 3
        again = c.generate_many(["a", "b", "c"], progress=False)
        assert all(isinstance(g, mai.Generation) and g.cached for g in again)


def test_generate_many_with_cancel_already_set(server: OfflineServer, client: mai.Client) -> None:
    cancel = threading.Event()
    cancel.set()
    results = client.generate_many(["a", "b"], progress=False, cancel=cancel)
    assert all(isinstance(r, mai.CancelledError) for r in results)
    assert server.post_count == 0


def test_the_budget_is_asked_before_anything_is_sent(server: OfflineServer, tmp_path: Path) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.1) as client:
        with pytest.raises(mai.BudgetExceededError):
            client.generate_many(["a", "b", "c"], progress=False)
        assert server.post_count == 0


def test_a_job_holds_exactly_one_of_params_and_error() -> None:
    from mai_image_nb.batch import Job
    from mai_image_nb.errors import ValidationError
    from mai_image_nb.params import validate_params

    with pytest.raises(TypeError, match="exactly one"):
        Job(None)
    with pytest.raises(TypeError, match="exactly one"):
        Job(validate_params("a fox"), ValidationError("prompt", "", "text"))
