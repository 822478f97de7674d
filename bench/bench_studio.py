"""Panel costs: the History tab at 10,000 generations, click-to-preview, saved-notebook size."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import mai_image_nb as mai
from bench.bench_client import TINY_SCALE, _fill_history
from bench.harness import Row
from mai_image_nb.history import DB_NAME
from mai_image_nb.offline import OfflineServer

WAIT_S = 30.0
_COLUMNS = "id, prompt, aspect_ratio, temperature, usd_spent, file"
_FIRST_PAGE = (
    f"SELECT {_COLUMNS}, (SELECT COUNT(*) FROM generations) FROM generations "
    "ORDER BY seq DESC LIMIT 12"
)
_FILTER = (
    "SELECT g.id FROM generations g JOIN generations_fts f ON f.rowid = g.seq "
    "WHERE generations_fts MATCH ? ORDER BY g.seq DESC LIMIT 12"
)
_PAGE = f"SELECT {_COLUMNS} FROM generations ORDER BY seq DESC LIMIT 12 OFFSET ?"


def _bare(db: sqlite3.Connection, sql: str, *args: object) -> None:
    db.execute(sql, args).fetchall()


def _always() -> bool:
    return True


def _timed(action: Callable[[], None], done: Callable[[], bool]) -> float:
    started = time.perf_counter()
    action()
    assert done(), "the panel did not finish in time"
    return (time.perf_counter() - started) * 1000


def history_tab(n: int, rounds: int) -> list[Row]:
    """First page, filter and page flip of the History tab vs the bare SQLite query each wraps."""
    from mai_image_nb.studio import Studio

    first: list[float] = []
    filtered: list[float] = []
    flipped: list[float] = []
    bare_first: list[float] = []
    bare_filter: list[float] = []
    bare_flip: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(image_scale=TINY_SCALE) as srv:
        folder = Path(tmp) / "h"
        history, _ = _fill_history(folder, n)
        client = mai.Client(base_url=srv.url, history=history)
        db = sqlite3.connect(folder / DB_NAME)
        for r in range(rounds):
            started = time.perf_counter()
            studio = Studio(client)
            assert studio.history.wait_idle(WAIT_S), "the panel did not finish in time"
            first.append((time.perf_counter() - started) * 1000)
            tab = studio.history
            bare_first.append(_timed(partial(_bare, db, _FIRST_PAGE), _always))
            filtered.append(
                _timed(
                    partial(setattr, tab.filter_box, "value", f"number {100 + r}"),
                    partial(tab.wait_idle, WAIT_S),
                )
            )
            bare_filter.append(
                _timed(partial(_bare, db, _FILTER, f'"number" "{100 + r}"*'), _always)
            )
            tab.filter_box.value = ""
            tab.wait_idle(WAIT_S)
            page = 5 + r
            flipped.append(_timed(partial(tab.show_page, page), partial(tab.wait_idle, WAIT_S)))
            bare_flip.append(_timed(partial(_bare, db, _PAGE, page * 12), _always))
            studio.close()
        db.close()
        client.close()
        history.close()
    return [
        Row(
            f"History tab, first page ({n:,} generations; Studio built)",
            first,
            "bare SQLite page + count",
            bare_first,
            goal="≤ 300 ms",
            ok=statistics.median(first) <= 300,
            note="includes making the 12 thumbnails once (stored; later opens read them)",
        ),
        Row(
            "History tab, text filter",
            filtered,
            "bare FTS5 query",
            bare_filter,
            goal="≤ 100 ms",
            ok=statistics.median(filtered) <= 100,
        ),
        Row(
            "History tab, page flip",
            flipped,
            "bare SQLite LIMIT/OFFSET",
            bare_flip,
            goal="≤ 150 ms",
            ok=statistics.median(flipped) <= 150,
        ),
    ]


def click_to_preview(rounds: int) -> list[Row]:
    """Generate click to preview shown, minus the client call, vs encoding the preview alone."""
    from mai_image_nb import previews
    from mai_image_nb.studio import Studio

    overhead: list[float] = []
    encode: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        client = mai.Client(offline=True, history=Path(tmp) / "h")
        studio = Studio(client)
        tab = studio.generate
        for r in range(rounds):
            tab.prompt_box.value = f"a lighthouse at dusk, take {r}"
            tab.generate_button.click()
            assert studio.wait_idle(WAIT_S)
            overhead.append(tab.last_timing["overhead_s"] * 1000)
            assert tab.generation is not None
            image = tab.generation.image
            started = time.perf_counter()
            previews.preview_bytes(image)
            encode.append((time.perf_counter() - started) * 1000)
        studio.close()
        client.close()
    return [
        Row(
            "Generate click → preview shown, minus the call",
            overhead,
            "previews.preview_bytes alone",
            encode,
            goal="≤ 50 ms",
            ok=statistics.median(overhead) <= 50,
        )
    ]


_STUDIO_NOTEBOOK = [
    "import mai_image_nb as mai\nstudio = mai.Studio(mai.Client(offline=True))\nstudio",
    "tab = studio.generate\n"
    "for i in range(10):\n"
    "    tab.prompt_box.value = f'a lighthouse at dusk, take {i}'\n"
    "    tab.generate_button.click()\n"
    "    assert studio.wait_idle(60)\n"
    "len(studio.client.history)",
]
_ONE_PNG_NOTEBOOK = [
    "import ipywidgets as w, mai_image_nb as mai\n"
    "g = mai.Client(offline=True, history=False).generate('a lighthouse at dusk')\n"
    "w.Image(value=g.data, format='png')",
]


def _saved_size(cells: list[str], folder: Path) -> int:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    path = folder / "saved.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


def saved_notebook(rounds: int) -> list[Row]:
    """A notebook that makes 10 images in a Studio, executed and saved, vs one PNG widget."""
    studio_kb: list[float] = []
    one_png_kb: list[float] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            studio_kb.append(_saved_size(_STUDIO_NOTEBOOK, Path(tmp)) / 1024)
        with tempfile.TemporaryDirectory() as tmp:
            one_png_kb.append(_saved_size(_ONE_PNG_NOTEBOOK, Path(tmp)) / 1024)
    return [
        Row(
            "saved notebook: Studio with 10 images",
            studio_kb,
            "one 1024 px PNG in an Image widget",
            one_png_kb,
            unit="KiB",
            goal="≤ 1 MB",
            ok=max(studio_kb) <= 1024,
        )
    ]


def run(quick: bool = False) -> list[Row]:
    rows = history_tab(n=2_000 if quick else 10_000, rounds=3 if quick else 9)
    rows += click_to_preview(rounds=5 if quick else 20)
    rows += saved_notebook(rounds=1 if quick else 2)
    return rows
