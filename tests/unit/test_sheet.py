"""sheet.py, through `Comparison.image()`: one labelled tile per cell, failed cells shown too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import mai_image_nb as mai
from mai_image_nb.offline import Fault, OfflineServer


@pytest.fixture
def client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        yield c


def grid(client: mai.Client, temperatures: tuple[float, ...]) -> mai.Comparison:
    return client.compare(
        "a windmill", aspect_ratios=("1:1", "16:9"), temperatures=temperatures, progress=False
    )


def test_the_sheet_grows_with_the_grid(client: mai.Client) -> None:
    two = grid(client, (0.0, 1.0)).image()
    three = grid(client, (0.0, 1.0, 1.5)).image()
    assert isinstance(two, Image.Image)
    assert three.width > two.width
    assert three.height == two.height  # same rows


def test_a_failed_cell_still_gets_its_tile(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.status(400))
    failed = grid(client, (0.0, 1.0))
    assert len(failed.failed) == 1
    whole = failed.retry_failed(progress=False)
    assert failed.image().size == whole.image().size
    assert failed.image().tobytes() != whole.image().tobytes()


def test_the_saved_sheet_is_a_png(client: mai.Client, tmp_path: Path) -> None:
    path = grid(client, (0.0,)).save(tmp_path / "sheet.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == grid(client, (0.0,)).image().size
