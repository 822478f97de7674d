"""comparison.py: a grid's cells, lookup by the values as passed, costs, records, retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.history import image_files
from mai_image_nb.offline import Fault, OfflineServer

RATIOS = ("1:1", "16:9")
TEMPS = (0.0, 1.5)


@pytest.fixture
def client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        yield c


def small_grid(client: mai.Client) -> mai.Comparison:
    return client.compare("a kite", aspect_ratios=RATIOS, temperatures=TEMPS, progress=False)


def test_each_cell_holds_exactly_one_of_generation_and_error(
    client: mai.Client, server: OfflineServer
) -> None:
    server.script(Fault.status(400))  # max_workers=1: the first cell fails, without retries
    grid = small_grid(client)
    assert len(grid) == len(grid.cells) == 4
    assert [c.aspect_ratio for c in grid] == ["1:1", "1:1", "16:9", "16:9"]
    assert [c.temperature for c in grid] == [0.0, 1.5, 0.0, 1.5]
    for cell in grid.cells:
        assert (cell.generation is None) != (cell.error is None)
        assert cell.ok is (cell.generation is not None)
    assert grid.failed == [grid.cells[0]]
    assert isinstance(grid.cells[0].error, mai.APIStatusError)
    assert grid.aspect_ratios == RATIOS and grid.temperatures == TEMPS and grid.repeats == 1


def test_lookup_by_values_as_passed(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.status(400))
    grid = small_grid(client)
    assert grid["16:9", 1.5] is grid.cells[3].generation
    with pytest.raises(KeyError, match="failed"):
        grid["1:1", 0.0]
    with pytest.raises(KeyError):
        grid["9:16", 0.0]
    with pytest.raises(KeyError):
        grid["16:9", 1.0]


def test_retry_failed_reruns_only_the_failed_cells(
    client: mai.Client, server: OfflineServer
) -> None:
    server.script(Fault.status(400))
    grid = small_grid(client)
    sent = server.post_count
    again = grid.retry_failed(progress=False)
    assert server.post_count == sent + 1
    assert again.failed == []
    assert [c.generation for c in again.cells[1:]] == [c.generation for c in grid.cells[1:]]
    assert again.retry_failed(progress=False) is again  # nothing left to run


def test_total_and_paid(client: mai.Client, server: OfflineServer) -> None:
    first = small_grid(client)
    assert first.paid_usd == pytest.approx(first.total_usd)
    assert first.total_usd == pytest.approx(4 * server.usd_per_image)
    second = small_grid(client)  # all cached
    assert second.paid_usd == 0
    assert second.total_usd == pytest.approx(first.total_usd)


def test_records_are_json_safe_one_per_cell(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.status(400))
    records = small_grid(client).to_records()
    assert len(records) == 4
    json.dumps(records)
    assert [r["ok"] for r in records] == [False, True, True, True]
    assert records[0]["error"] and records[1]["error"] is None
    assert records[1]["prompt"] == "a kite" and records[1]["aspect_ratio"] == "1:1"
    images = (client.history.path / "images").resolve()  # type: ignore[union-attr]
    assert records[0]["file"] is None
    for record in records[1:]:  # each finished cell's own image file, from the history
        assert Path(record["file"]).is_file() and Path(record["file"]).parent.resolve() == images
    assert len({r["file"] for r in records[1:]}) == 3


def test_records_look_up_only_their_cells_files(client: mai.Client) -> None:
    client.generate("another picture, not in the grid")
    grid = small_grid(client)
    ids = [cell.generation.id for cell in grid.cells if cell.generation is not None]
    history = client.history
    assert history is not None and len(history) == 5
    # More ids than one query binds, most unknown: only the cells' files come back.
    asked = [f"missing-{i}" for i in range(1200)] + ids + ids
    assert sorted(image_files(history, asked)) == sorted(ids)
    assert {r["file"] for r in grid.to_records()} == set(image_files(history, ids).values())
