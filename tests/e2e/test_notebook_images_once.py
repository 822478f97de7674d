"""A displayed Generation or grid is stored once in a saved notebook, and static exports show it.

Runs notebooks/02-compare-parameters.ipynb offline in a fresh kernel (nbclient), writes it,
and checks from the saved file itself: no image/png output is repeated as base64 inside an
HTML output, and the nbconvert HTML export has an <img> for every image output.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from PIL import Image

from bench.notebook_size import measure, run_notebook

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
IMG_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,([^"]+)"')


def test_notebook_02_stores_each_image_once_and_exports_it(tmp_path: Path) -> None:
    nb = run_notebook(REPO, tmp_path)
    sizes = measure(nb, tmp_path / "saved.ipynb")
    saved = nbformat.read(tmp_path / "saved.ipynb", as_version=4)
    pngs = [
        re.sub(r"\s+", "", out["data"]["image/png"])
        for cell in saved.cells
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert len(pngs) >= 3  # one generation and two grids at least
    assert sizes["html_images"] == 0, "an image is stored a second time inside text/html"
    htmls = "".join(
        "".join(out["data"]["text/html"])
        for cell in saved.cells
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    )
    assert "temperature" in htmls  # the captions are still there

    html, _ = HTMLExporter().from_notebook_node(saved)
    inline = IMG_PNG.findall(html)
    for data in pngs:
        assert data in inline, "an image output is not an <img> of the HTML export"
    for data in set(inline):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.verify()
