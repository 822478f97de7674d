"""export.py: PNGs that carry their parameters, index.json and index.csv, nothing overwritten."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.export import RECORD_FIELDS, export_generations, record_of
from mai_image_nb.offline import OfflineServer

PROMPTS = ("a lighthouse at dusk", '=HYPERLINK("http://x.example")', "../../etc/passwd")


@pytest.fixture
def generations(server: OfflineServer) -> Iterator[list[mai.Generation]]:
    with mai.Client(base_url=server.url, history=False) as client:
        yield [client.generate(p, temperature=0) for p in PROMPTS]


def test_each_png_carries_its_parameters(generations: list[mai.Generation], tmp_path: Path) -> None:
    folder = export_generations(generations, tmp_path / "out")
    assert folder == tmp_path / "out"
    records = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert [r["prompt"] for r in records] == list(PROMPTS)
    for gen, record in zip(generations, records, strict=True):
        assert record == record_of(gen, record["file"])
        png = folder / record["file"]
        assert png.parent == folder  # a prompt never makes a path outside the folder
        params = mai.read_params(png)
        assert params["prompt"] == gen.prompt
        assert params["temperature"] == gen.temperature


def test_csv_has_the_record_fields_and_formulas_stay_text(
    generations: list[mai.Generation], tmp_path: Path
) -> None:
    folder = export_generations(generations, tmp_path)
    with (folder / "index.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RECORD_FIELDS
    assert rows[0]["prompt"] == PROMPTS[0]
    assert rows[1]["prompt"] == "'" + PROMPTS[1]  # a spreadsheet shows it, never runs it


def test_a_second_export_overwrites_nothing(
    generations: list[mai.Generation], tmp_path: Path
) -> None:
    export_generations(generations[:1], tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    export_generations(generations[:1], tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {name: after[name] for name in first} == first
    assert len(after) == 2 * len(first)


def test_record_of_drops_cached_and_adds_the_file(generations: list[mai.Generation]) -> None:
    record = record_of(generations[0], "x.png")
    assert "cached" not in record
    assert record["file"] == "x.png"
    assert set(record) == set(RECORD_FIELDS)
    json.dumps(record)  # JSON-safe
