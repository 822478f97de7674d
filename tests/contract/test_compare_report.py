"""A grid's sheet, numbers and report, made over loopback from the simulator."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mai_image_nb as mai
from mai_image_nb.analysis import CELL_FIELDS
from mai_image_nb.offline import Fault, OfflineServer

HOSTILE = "a fox <script>alert('x')</script> & \"quotes\" <img src=x onerror=alert(1)>"
PROMPTS = ["a red fox in the snow", HOSTILE]
SMALL: dict[str, Any] = {"aspect_ratios": ["1:1", "16:9"], "temperatures": [0, 1.5],
                         "progress": False}  # fmt: skip


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the inline styles and scripts."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in = tag if tag in ("style", "script") else None
        if "style" in dict(attrs):
            self.styles.append(dict(attrs)["style"] or "")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def assert_offline(page: Page) -> None:
    """Nothing the browser would fetch from a network: no scheme, no //, no @import or url()."""
    for _, attrs in page.tags:
        for name in ("src", "href", "srcset", "poster", "action", "data"):
            if name in attrs:
                value = attrs[name].strip().lower()
                assert value.startswith("data:") or not re.match(
                    r"^([a-z][a-z0-9+.-]*:|//)", value
                ), value
                if not value.startswith("data:"):
                    assert "//" not in value and "http" not in value, value
        assert not any(name.startswith("on") for name in attrs), attrs
    for css in page.styles:
        assert "url(" not in css and "@import" not in css and "http" not in css and "//" not in css


@pytest.fixture
def grid_client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=4) as c:
        yield c


def test_to_html_is_one_offline_escaped_page_laid_out_as_the_sheet(
    server: OfflineServer, grid_client: mai.Client, tmp_path: Path
) -> None:
    server.script(Fault.status(400))  # one failed cell, its error shown escaped
    grid = grid_client.compare(PROMPTS, repeats=2, **SMALL)
    assert len(grid.failed) == 1
    path = grid.to_html(tmp_path / "out" / "report")
    assert path == tmp_path / "out" / "report.html"
    markup = path.read_text(encoding="utf-8")
    page = Page(markup)
    assert_offline(page)
    assert not page.scripts  # a report needs no script
    text = "".join(page.text)
    assert HOSTILE in text  # shown as text, exactly
    assert "<script>alert" not in markup and "<img src=x" not in markup
    # The sheet's layout: one table per prompt block, a header per temperature, a row per ratio.
    tables = page.named("table")
    assert len([t for t in tables if t.get("class") == "grid"]) == 2
    headers = [a for a in page.named("th") if a.get("scope") == "col"]
    assert len(headers) == 2 * 2
    images = page.named("img")
    assert len(images) == len(grid) - 1
    for attrs in images:
        head, data = attrs["src"].split(",", 1)
        assert head == "data:image/jpeg;base64"
        with Image.open(io.BytesIO(base64.b64decode(data))) as preview:
            assert preview.format == "JPEG" and max(preview.size) <= 512
    assert "&#36;" in markup and f"{grid.total_usd:.4f}" in text
    assert "failed" in text and ("400" in text or "Bad Request" in text)


def test_to_html_with_other_axes_and_into_a_folder(grid_client: mai.Client, tmp_path: Path) -> None:
    grid = grid_client.compare(PROMPTS, **SMALL)
    path = grid.to_html(tmp_path, rows="prompt", cols="aspect_ratio")
    assert path.parent == tmp_path and path.suffix == ".html"
    page = Page(path.read_text(encoding="utf-8"))
    assert len([t for t in page.named("table") if t.get("class") == "grid"]) == 2  # 2 temps
    row_heads = [a for a in page.named("th") if a.get("scope") == "row"]
    assert len(row_heads) == 2 * 2
    with pytest.raises(mai.ValidationError):
        grid.to_html(tmp_path / "x.html", rows="prompt", cols="prompt")
    assert not (tmp_path / "x.html").exists()


def test_records_and_frame_per_cell_over_loopback(grid_client: mai.Client) -> None:
    grid = grid_client.compare(PROMPTS, repeats=2, **SMALL)
    records = grid.to_records()
    assert len(records) == len(grid)
    json.dumps(records)
    for record, cell in zip(records, grid.cells, strict=True):
        assert tuple(record) == CELL_FIELDS
        assert (record["prompt"], record["aspect_ratio"], record["temperature"],
                record["repeat"]) == (cell.prompt, cell.aspect_ratio, cell.temperature,
                                      cell.repeat)  # fmt: skip
        assert cell.generation is not None
        assert record["id"] == cell.generation.id and record["ok"]
        assert record["file"] and Path(record["file"]).is_file()  # as in History.to_records()
    frame = grid.to_pandas()
    assert list(frame.columns) == list(CELL_FIELDS)
    assert len(frame) == len(grid)
    assert frame.groupby("prompt").size().to_dict() == dict.fromkeys(PROMPTS, 8)
    assert str(frame["created"].dt.tz) == "UTC"


def test_variation_on_the_simulator_is_zero_at_0_and_grows(grid_client: mai.Client) -> None:
    grid = grid_client.compare(["a cat", "a boat at sea"], aspect_ratios=["1:1"],
                               temperatures=[0, 0.5, 2], repeats=3, progress=False)  # fmt: skip
    rows = {(r["prompt"], r["temperature"]): r for r in grid.variation()}
    assert len(rows) == 6
    for prompt in ("a cat", "a boat at sea"):
        assert rows[prompt, 0]["variation"] == 0 and rows[prompt, 0]["n"] == 3
        assert 0 < rows[prompt, 0.5]["variation"] < rows[prompt, 2]["variation"] <= 1


def test_inline_caption_shows_dollars_as_text_under_mathjax(grid_client: mai.Client) -> None:
    grid = grid_client.compare(PROMPTS, **SMALL)
    markup = grid._repr_html_()
    caption = markup[markup.index("<figcaption") :]
    assert "$" not in caption and "&#36;" in caption
    assert "tex2jax_ignore" in caption
    page = Page(markup)
    assert_offline(page)
    assert HOSTILE in "".join(page.text)
    assert len(page.named("img")) == 1


def test_export_writes_an_offline_gallery_of_the_exported_files(
    grid_client: mai.Client, tmp_path: Path
) -> None:
    grid_client.compare(PROMPTS, aspect_ratios=["1:1"], temperatures=[1], progress=False)
    history = grid_client.history
    assert history is not None
    out = history.export(tmp_path / "export")
    markup = (out / "index.html").read_text(encoding="utf-8")
    page = Page(markup)
    assert_offline(page)
    assert HOSTILE in "".join(page.text)
    assert "<script>alert" not in markup and "<img src=x" not in markup
    sources = [a["src"] for a in page.named("img")]
    assert len(sources) == len(history) == 2
    for src in sources:
        assert (out / src).is_file()  # each links a PNG beside the page
    assert sorted(sources) == sorted(p.name for p in out.glob("*.png"))
    assert len(page.scripts) == 1 and "fetch" not in page.scripts[0]  # only the filter box
