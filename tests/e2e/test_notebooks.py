"""The teaching notebooks: committed clean, run top to bottom in a real kernel, export with images.

Each notebook runs in a fresh kernel (nbclient) in a temporary working folder with its own
MAI_IMAGE_HOME: once without a key (the bundled simulator), once "as on the real API" (a key in
the environment and AIMLAPI_BASE_URL pointing at a simulator that demands that key, so the
client takes its API path). The executed notebooks convert to HTML whose images are inline
`data:image/png` pictures, which is what nbconvert and GitHub show without widgets.
"""

from __future__ import annotations

import ast
import base64
import copy
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image

from mai_image_nb.offline import OfflineServer
from tests.conftest import CANARY_KEY  # the suite's one canary: it must show up nowhere
from tests.e2e.conftest import NOTEBOOKS, kernel_env

pytestmark = pytest.mark.e2e

NOTEBOOK_NAMES = [
    "01-quickstart.ipynb",
    "02-compare-parameters.ipynb",
    "03-history-and-reuse.ipynb",
    "04-for-teachers.ipynb",
    "05-measuring-temperature.ipynb",
]
RUN_LIMIT_S = 60.0  # the issue: each runs top to bottom in under a minute
CELL_TIMEOUT_S = 60
# The fewest image outputs each notebook shows (Generation and Comparison displays).
MIN_IMAGES = {
    "01-quickstart.ipynb": 1,
    "02-compare-parameters.ipynb": 4,
    "03-history-and-reuse.ipynb": 2,
    "04-for-teachers.ipynb": 3,
    "05-measuring-temperature.ipynb": 3,  # the grid, the sheet by prompt, the plot
}
# Notebooks that save images into the working folder.
WRITES_MY_IMAGES = {
    "01-quickstart.ipynb",
    "02-compare-parameters.ipynb",
    "03-history-and-reuse.ipynb",
    "05-measuring-temperature.ipynb",
}
IMG_PNG = re.compile(r'<img\b[^>]*?\bsrc="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@dataclass
class Run:
    """One executed notebook and where it ran."""

    nb: Any
    seconds: float
    cwd: Path
    home: Path
    posts: int  # requests the keyed simulator received during the run (api mode)


class Runs:
    """Executes each (notebook, mode) once per module, whichever test asks first."""

    def __init__(self, tmp: pytest.TempPathFactory, keyed: OfflineServer) -> None:
        self._tmp, self._keyed = tmp, keyed
        self._done: dict[tuple[str, str], Run] = {}

    def get(self, name: str, mode: str) -> Run:
        if (name, mode) not in self._done:
            self._done[name, mode] = self._execute(name, mode)
        return self._done[name, mode]

    def _execute(self, name: str, mode: str) -> Run:
        base = self._tmp.mktemp(f"{Path(name).stem}-{mode}")
        cwd, home = base / "work", base / "home"
        cwd.mkdir()
        extra = {}
        if mode == "api":
            extra = {"AIMLAPI_KEY": CANARY_KEY, "AIMLAPI_BASE_URL": self._keyed.url}
        env = kernel_env(home, **extra)
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(cwd)}},
        )
        posts_before = self._keyed.post_count
        started = time.monotonic()
        client.execute(env=env)
        seconds = time.monotonic() - started
        return Run(nb, seconds, cwd, home, self._keyed.post_count - posts_before)


@pytest.fixture(scope="module")
def keyed_simulator() -> Iterator[OfflineServer]:
    """Stands in for the real API: it answers only requests that carry CANARY_KEY."""
    with OfflineServer(api_key=CANARY_KEY) as server:
        yield server
    assert not server.errors, server.errors


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, keyed_simulator: OfflineServer) -> Runs:
    return Runs(tmp_path_factory, keyed_simulator)


def code_outputs(nb: Any) -> Iterator[dict[str, Any]]:
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


def png_outputs(nb: Any) -> list[str]:
    """The base64 of every image/png output, whitespace removed."""
    return [
        re.sub(r"\s+", "", out["data"]["image/png"])
        for out in code_outputs(nb)
        if "image/png" in out.get("data", {})
    ]


def text_of(nb: Any) -> str:
    """Every stream and text/plain output, joined."""
    parts = []
    for out in code_outputs(nb):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


# -- the committed files ---------------------------------------------------------------------------


def test_the_four_notebooks_are_there() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_notebook_is_stripped(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata, "widget state is saved in the notebook"
    for index, cell in enumerate(nb.cells):
        assert "execution" not in cell.metadata, f"cell {index} keeps execution timings"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} holds outputs"
            assert cell.execution_count is None, f"cell {index} holds an execution count"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_notebook_keeps_keys_out_and_caps_spending(name: str) -> None:
    """No code cell sets a key; every client that could reach the real API has a budget."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for source in sources:
        assert not re.search(r"AIMLAPI_KEY\s*[\]'\"]*\s*=|%env\s+AIMLAPI_KEY", source), source
    clients = [
        node
        for tree in (ast.parse(source) for source in sources)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "Client"
    ]
    assert clients, "the notebook makes no client"
    for call in clients:
        keywords = {k.arg for k in call.keywords}
        if "base_url" not in keywords:  # may reach the real API when AIMLAPI_KEY is set
            assert "budget_usd" in keywords, f"a Client without budget_usd in {name}"


# -- running them ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_without_a_key(runs: Runs, name: str) -> None:
    run = runs.get(name, "offline")
    assert run.seconds < RUN_LIMIT_S, f"{name} took {run.seconds:.1f} s"
    errors = [out for out in code_outputs(run.nb) if out["output_type"] == "error"]
    assert not errors, errors
    stderr = [out["text"] for out in code_outputs(run.nb) if out.get("name") == "stderr"]
    assert not stderr, f"{name} wrote to stderr: {stderr}"
    assert len(png_outputs(run.nb)) >= MIN_IMAGES[name]
    assert run.posts == 0, "without a key nothing may reach another server"
    # Everything it wrote stayed in its temporary folders.
    if name != "04-for-teachers.ipynb":  # 04 keeps its demonstration out of the history
        assert (run.home / "history.sqlite3").is_file()
    if name in WRITES_MY_IMAGES:
        assert any((run.cwd / "my-images").iterdir())


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_exports_to_html_with_inline_images(runs: Runs, name: str) -> None:
    run = runs.get(name, "offline")
    html, _ = HTMLExporter().from_notebook_node(run.nb)
    inline = IMG_PNG.findall(html)  # <img> tags only: the page's CSS holds data images too
    assert len(inline) >= MIN_IMAGES[name]
    for data in png_outputs(run.nb):
        assert data in inline, "an image output is not an <img> of the HTML export"
    for data in set(inline):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.verify()


BAR_TEXT = re.compile(r"\d+/\d+ \[")  # tqdm's "9/9 [00:02<00:00, ...]"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_progress_bars_end_as_a_line_of_text(runs: Runs, name: str) -> None:
    """A finished batch's bar is text in the saved notebook (it reopens anywhere), not a
    widget that needs its kernel."""
    run = runs.get(name, "offline")
    bars = [
        out["data"]
        for out in code_outputs(run.nb)
        if BAR_TEXT.search(out.get("data", {}).get("text/plain", ""))
    ]
    assert not [data for data in bars if "application/vnd.jupyter.widget-view+json" in data]
    if name == "01-quickstart.ipynb":  # its 2 × 2 Compare runs with a progress bar
        assert any("100%" in data["text/plain"] and "4/4" in data["text/plain"] for data in bars)


def test_the_studio_reads_as_a_note_in_a_static_export(runs: Runs) -> None:
    """Without a kernel (nbconvert HTML, GitHub) the Studio's cell says what stood there."""
    run = runs.get("01-quickstart.ipynb", "offline")
    # Two outputs: the widget view with an empty text, then the note (text and HTML).
    outputs = list(code_outputs(run.nb))
    notes = [i for i, out in enumerate(outputs) if "run this cell" in out.get("data", {}).get(
        "text/html", "")]  # fmt: skip
    assert len(notes) == 1 and "Run this cell" in outputs[notes[0]]["data"]["text/plain"]
    widget = outputs[notes[0] - 1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget and widget["text/plain"] == ""
    # With the widget state (nbclient saves it) or without it (Lab's default save, GitHub)
    # the note is there once, never an error.
    stateless = copy.deepcopy(run.nb)
    stateless.metadata.pop("widgets", None)
    for nb in (run.nb, stateless):
        html, _ = HTMLExporter().from_notebook_node(nb)
        assert html.count("run this cell") == 1 and "Error displaying widget" not in html


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_on_the_api_path_with_a_key_from_the_environment(
    runs: Runs, name: str
) -> None:
    """As with a real key: the client takes its API path, and the key is written nowhere."""
    run = runs.get(name, "api")
    assert run.seconds < RUN_LIMIT_S, f"{name} took {run.seconds:.1f} s"
    errors = [out for out in code_outputs(run.nb) if out["output_type"] == "error"]
    assert not errors, errors
    if name == "04-for-teachers.ipynb":
        assert "mode: api" in text_of(run.nb)  # its last cell: a plain client takes the key
    else:
        assert run.posts > 0, "the notebook never reached the keyed service"
    assert len(png_outputs(run.nb)) >= MIN_IMAGES[name]
    saved = json.dumps(run.nb)
    assert CANARY_KEY not in saved
    assert CANARY_KEY not in HTMLExporter().from_notebook_node(run.nb)[0]
    for folder in (run.cwd, run.home):
        for path in folder.rglob("*"):
            if path.is_file():
                assert CANARY_KEY.encode() not in path.read_bytes(), path
