"""Saved size of notebooks/02-compare-parameters.ipynb after a run: inline images stored once?

`python -m bench.notebook_size [--code DIR]` executes the notebook offline in a fresh kernel
(nbclient) in a temporary folder, writes it, and prints its size, the bytes of image/png
outputs, and the bytes of base64 images inside text/html outputs (copies). `--code` puts
another checkout first on the kernel's PYTHONPATH (e.g. an export of main, for "before").
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "02-compare-parameters.ipynb"
_HTML_IMAGE = re.compile(r"data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)")


def run_notebook(code: Path, workdir: Path) -> Any:
    """The notebook executed offline with `code` first on the kernel's path."""
    env = {k: v for k, v in os.environ.items() if k not in ("AIMLAPI_KEY", "AIMLAPI_BASE_URL")}
    env["MAI_IMAGE_HOME"] = str(workdir / "home")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    return nb


def measure(nb: Any, out: Path) -> dict[str, int]:
    """Bytes of the saved file, of its image/png outputs and of images inside text/html."""
    nbformat.write(nb, out)
    png = html_images = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            png += len(data.get("image/png", ""))
            html = data.get("text/html", "")
            text = html if isinstance(html, str) else "".join(html)
            html_images += sum(len(m) for m in _HTML_IMAGE.findall(text))
    return {"file": out.stat().st_size, "image_png": png, "html_images": html_images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notebook_size", description=__doc__)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout the kernel imports")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mai-nb-size-") as tmp:
        work = Path(tmp)
        sizes = measure(run_notebook(args.code.resolve(), work), work / "out.ipynb")
    print(
        f"{NOTEBOOK.name} with {args.code}: saved {sizes['file'] / 1e6:.3f} MB; "
        f"image/png outputs {sizes['image_png'] / 1e6:.3f} MB; "
        f"images inside text/html {sizes['html_images'] / 1e6:.3f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
