"""The package as users get it: a wheel and an sdist built from the tree, the wheel installed
into a fresh venv with nothing else, and the offline client, the simulator's bundled schema and
the Studio import working there, from a folder far from this checkout.

`python -m build` builds the sdist, then the wheel from the sdist, so a file the sdist forgets
breaks the wheel too. Isolated builds fetch setuptools from the package index; without one this
falls back to `--no-isolation`, building with the setuptools pinned in the dev extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from mai_image_nb import __version__

pytestmark = pytest.mark.e2e  # 25-35 s on 2 cores, most of it pip

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 180
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120
# What may never ship: tests, notebooks (and their outputs), caches, compiled files, history.
FORBIDDEN_PARTS = ("tests", "notebooks", "__pycache__", ".mai_image", ".ipynb_checkpoints")
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".ipynb", ".sqlite3")

USER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import mai_image_nb as mai
    from mai_image_nb.offline.schema import SCHEMA_PATH, request_schema

    installed = Path(mai.__file__).resolve()
    assert Path(sys.prefix).resolve() in installed.parents, installed
    assert SCHEMA_PATH.is_file() and "prompt" in request_schema()["properties"]

    out = Path(sys.argv[1])
    with mai.Client(offline=True, history=out / "history") as client:
        assert client.mode == "offline"
        g = client.generate("a lighthouse at dusk", aspect_ratio="16:9", temperature=0)
        path = g.save(out / "lighthouse.png")
        params = mai.read_params(path)
        assert params["prompt"] == "a lighthouse at dusk", params
        assert params["aspect_ratio"] == "16:9", params
        grid = client.compare(
            "a fox", aspect_ratios=("1:1",), temperatures=(0.0, 1.0), progress=False
        )
        assert len(grid.cells) == 2 and not grid.failed, grid.failed
        grid.save(out / "sheet.png")

    from mai_image_nb import Studio

    assert Studio.__name__ == "Studio"
    print("user script ok")
    """
)


def run(
    args: list[str], *, cwd: Path, timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)]
    done = run(build, cwd=out, timeout_s=BUILD_TIMEOUT_S)
    if done.returncode != 0:  # no package index for the isolated build's setuptools
        done = run([*build, "--no-isolation"], cwd=out, timeout_s=BUILD_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def shipped_problems(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if set(Path(name).parts) & set(FORBIDDEN_PARTS) or name.endswith(FORBIDDEN_SUFFIXES)
    ]


def test_the_wheel_holds_the_package_and_nothing_else(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        names = wheel.namelist()
    assert shipped_problems(names) == []
    top = {Path(name).parts[0] for name in names}
    assert top == {"mai_image_nb", f"mai_image_nb-{__version__}.dist-info"}
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "mai_image_nb").rglob("*.py")}
    assert sources <= set(names)  # every module, each subpackage too
    for data in ("mai_image_nb/py.typed", "mai_image_nb/offline/openapi.json"):
        assert data in names


def test_the_sdist_holds_the_sources_and_no_caches(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert shipped_problems(names) == []
    assert {"pyproject.toml", "README.md", "mai_image_nb/offline/openapi.json"} <= set(names)


def test_the_wheel_works_in_a_fresh_venv(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout_s=RUN_TIMEOUT_S)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "MAI_IMAGE"))}
    env.pop("PYTHONPATH", None)
    install = [str(python), "-m", "pip", "install", "-q", str(only(dist, "*.whl"))]
    installed = run(install, cwd=tmp_path, timeout_s=INSTALL_TIMEOUT_S, env=env)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    work = tmp_path / "user"
    work.mkdir()
    (work / "script.py").write_text(USER_SCRIPT, encoding="utf-8")
    # -I: no PYTHONPATH, no user site, and not this checkout on sys.path.
    done = run(
        [str(python), "-I", "script.py", str(work)], cwd=work, timeout_s=RUN_TIMEOUT_S, env=env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().endswith("user script ok")
    assert (work / "lighthouse.png").stat().st_size > 0
    assert (work / "sheet.png").stat().st_size > 0
    served = run([str(python), "-I", "-m", "mai_image_nb.offline", "--help"], cwd=work,
                 timeout_s=RUN_TIMEOUT_S, env=env)  # fmt: skip
    assert served.returncode == 0 and "--port" in served.stdout, served.stderr
