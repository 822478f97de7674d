"""The key never lands in a saved notebook: a canary key through the client, the Studio and a 401.

A real kernel (nbclient) runs a notebook whose source never holds the key: the key comes from
the environment (AIMLAPI_KEY), as a user's would, and AIMLAPI_BASE_URL points at a simulator
that demands exactly that key. The notebook logs at DEBUG into its outputs, shows the client,
images, errors (caught and one uncaught traceback), two Studios (widget state is saved), and
meets a 401 from a simulator it starts with another key. The saved file holds no trace of it.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from mai_image_nb.offline import OfflineServer
from tests.e2e.conftest import kernel_env

pytestmark = pytest.mark.e2e

CANARY = "sk-canary-notebook-5e1d7a93c04b"  # never written in any notebook cell
CELL_TIMEOUT_S = 60
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

CELLS = [
    """\
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)  # every log line kept
import mai_image_nb as mai

client = mai.Client(budget_usd=1.0)  # the key and the URL come from the environment
print(client.mode, repr(client), vars(client))
client""",
    """\
gen = client.generate("a canary in a coal mine", temperature=0)
print(repr(gen), gen.to_dict())
gen""",
    """\
saved = gen.save("canary.png")
print(mai.read_params(saved))""",
    """\
from mai_image_nb.offline import OfflineServer

strict = OfflineServer(api_key="a-key-that-is-not-yours", image_scale=0.125).start()
wrong = mai.Client(base_url=strict.url, offline=False, history=False)  # sends the canary: 401
try:
    wrong.generate("a canary")
except mai.AuthenticationError as exc:
    caught = exc
print(repr(caught), caught.__dict__, str(caught))
caught""",
    "wrong.generate('a canary, uncaught')  # the traceback is saved in the notebook",
    """\
studio = mai.Studio(client)
studio""",
    """\
studio.generate.prompt_box.value = "a canary at dawn"
studio.generate.generate_button.click()
assert studio.wait_idle(30)
studio.compare.prompt_box.value = "a canary at dusk"
studio.compare.ratio_toggles.value = ("1:1",)
studio.compare.temperatures_box.value = "0.5, 1.5"
studio.compare.run_button.click()
assert studio.wait_idle(30)
studio.history.export_button.click()
assert studio.wait_idle(30)
print(studio.generate.status_line.value, studio.compare.status_line.value)
print(studio.history.status_line.value, studio.header.value)""",
    """\
refused = mai.Studio(wrong)
refused""",
    """\
refused.generate.prompt_box.value = "a canary"
refused.generate.generate_button.click()
assert refused.wait_idle(30)
assert "401" in refused.generate.status_line.value, refused.generate.status_line.value
print(refused.generate.status_line.value)""",
    """\
print(client.history.to_records())
client.history.export("export")
wrong.close()
strict.close()
print(client.spent_usd, client)""",
]
RAISES = 4  # the cell whose uncaught 401 is expected (tagged raises-exception)


def leaks(text: str) -> list[str]:
    """The forms of the canary found in `text`: plain, URL-quoted, or base64 at any offset."""
    forms = {"plain": CANARY, "url": urllib.parse.quote(CANARY)}
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + CANARY.encode()).decode()
        forms[f"base64+{shift}"] = encoded[4 if shift else 0 : -4]
    return [name for name, form in forms.items() if form in text]


@pytest.fixture
def keyed_server() -> Iterator[OfflineServer]:
    """Stands in for the real API: only requests that carry the canary key get images."""
    with OfflineServer(api_key=CANARY, image_scale=0.125) as server:
        yield server
        assert not server.errors


def _notebook() -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.cells[RAISES].metadata["tags"] = ["raises-exception"]
    return nb


def test_a_canary_key_leaves_no_trace_in_a_saved_notebook(
    keyed_server: OfflineServer, tmp_path: Path
) -> None:
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    nb = _notebook()
    assert not leaks(json.dumps(nb)), "the source itself must not hold the key"
    env = kernel_env(home, AIMLAPI_KEY=CANARY, AIMLAPI_BASE_URL=keyed_server.url)
    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    ).execute(env=env)
    saved = tmp_path / "canary.ipynb"
    nbformat.write(nb, saved)

    # The run did what it claims: the key reached the keyed server, a 401 was met and shown.
    sent = [r.headers.get("authorization") for r in keyed_server.requests if r.method == "POST"]
    assert sent and set(sent) == {f"Bearer {CANARY}"}
    outputs = [out for cell in nb.cells for out in cell.outputs]
    errors = [(i, out) for i, cell in enumerate(nb.cells) for out in cell.outputs
              if out.output_type == "error"]  # fmt: skip
    assert [i for i, _ in errors] == [RAISES], errors
    assert errors[0][1]["ename"] == "AuthenticationError"
    text = saved.read_text(encoding="utf-8")
    assert "HTTP 401" in text and "mai-status-error" in text
    assert any("image/png" in out.get("data", {}) for out in outputs)
    assert nb.metadata["widgets"][WIDGET_STATE]["state"], "no widget state was saved"

    # ... and the key is nowhere: the saved notebook, its HTML export, the files it wrote.
    assert leaks(text) == []
    assert leaks(HTMLExporter().from_notebook_node(nb)[0]) == []
    for folder in (workdir, home):
        for path in folder.rglob("*"):
            if path.is_file():
                assert leaks(path.read_bytes().decode("latin-1")) == [], path
