"""Panel costs: the History tab at 10,000 generations, click-to-preview, saved-notebook size."""

from __future__ import annotations

import gc
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import mai_image_nb as mai
from bench.bench_client import TINY_SCALE, _fill_history
from bench.harness import Row, Sample, growth_rows, sample_process
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


def _when_set(
    widget: object, name: str, accept: Callable[[object], bool] = lambda _new: True
) -> Callable[[], float]:
    """Start watching `widget.name`; the returned call waits for its next accepted change and
    gives its `perf_counter` time (taken by an observer: outside the code under test)."""
    seen = threading.Event()
    at: list[float] = []

    def observer(change: dict[str, object]) -> None:
        if not seen.is_set() and accept(change["new"]):
            at.append(time.perf_counter())
            seen.set()

    widget.observe(observer, names=name)  # type: ignore[attr-defined]

    def wait() -> float:
        assert seen.wait(WAIT_S), f"{name} did not change in time"
        widget.unobserve(observer, names=name)  # type: ignore[attr-defined]
        return at[0]

    return wait


def click_to_preview(rounds: int) -> list[Row]:
    """Generate click → preview bytes in the widget, timed by an observer of the Image widget,
    against the same client call alone (`client.generate` of another new prompt), interleaved."""
    from mai_image_nb.studio import Studio

    shown: list[float] = []
    call: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(image_scale=0.5, seed=3) as srv:
        client = mai.Client(base_url=srv.url, history=Path(tmp) / "h")
        studio = Studio(client)
        tab = studio.generate
        for r in range(rounds + 2):
            tab.prompt_box.value = f"a lighthouse at dusk, take {r}"
            wait = _when_set(tab.image_view, "value")
            started = time.perf_counter()
            tab.generate_button.click()
            at = wait()
            assert studio.wait_idle(WAIT_S)
            started_call = time.perf_counter()
            client.generate(f"a lighthouse at dawn, take {r}")
            ended_call = time.perf_counter()
            if r >= 2:  # two warm-up rounds
                shown.append((at - started) * 1000)
                call.append((ended_call - started_call) * 1000)
        studio.close()
        client.close()
    return [
        Row(
            "Generate click → preview in the widget (512 px image; observed from outside)",
            shown,
            "client.generate alone",
            call,
            goal="≤ 1.5×",
            ok=statistics.median(shown) <= 1.5 * statistics.median(call),
        )
    ]


def run_to_first_cell(rounds: int) -> list[Row]:
    """Compare Run → the first grid cell shown (2 × 2 grid), timed by an observer of the
    progress bar (set right after a cell's image), against `client.compare` alone until its
    first `on_cell`."""
    from mai_image_nb.studio import Studio

    shown: list[float] = []
    call: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(image_scale=0.5, seed=4) as srv:
        srv.set_latency(0.05)
        client = mai.Client(base_url=srv.url, history=Path(tmp) / "h")
        studio = Studio(client)
        tab = studio.compare
        tab.ratio_toggles.value = ("1:1", "16:9")
        tab.temperatures_box.value = "0.3, 1.3"
        for r in range(rounds + 1):
            tab.prompt_box.value = f"a red fox in fresh snow, take {r}"
            wait = _when_set(tab.progress, "value", lambda new: int(new) >= 1)  # type: ignore[call-overload]
            started = time.perf_counter()
            tab.run_button.click()
            at = wait()
            assert studio.wait_idle(WAIT_S)
            first: list[float] = []
            started_call = time.perf_counter()
            client.compare(
                f"a grey fox in fresh snow, take {r}",
                aspect_ratios=("1:1", "16:9"),
                temperatures=(0.3, 1.3),
                progress=False,
                on_cell=partial(_stamp, first),
            )
            if r >= 1:
                shown.append((at - started) * 1000)
                call.append((min(first) - started_call) * 1000)
        studio.close()
        client.close()
    return [
        Row(
            "Compare Run → first grid cell shown (2 × 2, 50 ms latency; observed)",
            shown,
            "client.compare alone, to its first on_cell",
            call,
            goal="≤ 1.5×",
            ok=statistics.median(shown) <= 1.5 * statistics.median(call),
        )
    ]


def _stamp(into: list[float], _cell: object) -> None:
    into.append(time.perf_counter())


def studio_soak(clicks: int) -> list[Row]:
    """`clicks` Studio clicks on one panel (Generate, New variation, a 1 × 2 Compare run in
    turn), sampling threads, fds and RSS every 50 clicks: goal flat."""
    from mai_image_nb.studio import Studio

    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(image_scale=TINY_SCALE) as srv:
        client = mai.Client(base_url=srv.url, history=Path(tmp) / "h")
        studio = Studio(client)
        gen, cmp = studio.generate, studio.compare
        cmp.ratio_toggles.value = ("1:1",)
        cmp.temperatures_box.value = "0.5, 1.5"
        for k in range(clicks):
            if k % 3 == 0:
                gen.prompt_box.value = f"a lighthouse, click {k}"
                gen.generate_button.click()
            elif k % 3 == 1:
                gen.variation_button.click()
            else:
                cmp.prompt_box.value = f"a fox, click {k}"
                cmp.run_button.click()
            assert studio.wait_idle(WAIT_S), f"click {k} did not finish"
            if k % 50 == 0 or k == clicks - 1:
                gc.collect()
                samples.append(sample_process(f"click {k + 1}"))
        studio.close()
        client.close()
    return growth_rows(
        samples,
        subject=f"Studio soak: {{what}} after {clicks} clicks",
        baseline="{what} after the first click",
    )


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
    rows += run_to_first_cell(rounds=5 if quick else 15)
    rows += studio_soak(clicks=60 if quick else 300)
    rows += saved_notebook(rounds=1 if quick else 2)
    return rows
