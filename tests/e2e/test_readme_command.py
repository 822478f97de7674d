"""The README's first command, as written, opens JupyterLab on the quickstart.

It runs in the repository itself (it makes or reuses .venv and installs the package in
editable mode, which is idempotent), with only `--no-browser --port <free>` added. The token is
the one the server chose, read from its runtime file. The test waits until the quickstart is
served, then stops the whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, REPO, free_port, http_get, log_tail

pytestmark = pytest.mark.e2e

QUICKSTART = "notebooks/01-quickstart.ipynb"
START_LIMIT_S = 240.0  # a venv and an editable install from the local index, then the server
STOP_LIMIT_S = 20.0


def readme_first_command() -> str:
    """The first ```bash block under the "Two commands" heading of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Two commands\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## Two commands' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "no ```bash block under 'Two commands'"
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one command line, got {lines}"
    return lines[0]


def test_readme_command_is_the_quickstart_in_jupyterlab() -> None:
    command = readme_first_command()
    assert command.rstrip().endswith(QUICKSTART), command
    assert "jupyter lab" in command


def command_env(base: Path) -> dict[str, str]:
    """A user's shell: no key, no active venv, Jupyter's config and runtime in temp folders."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AIMLAPI_KEY", "AIMLAPI_BASE_URL", "VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    for name in ("config", "runtime", "home"):
        (base / name).mkdir()
    env["JUPYTER_CONFIG_DIR"] = str(base / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
    env["MAI_IMAGE_HOME"] = str(base / "home")
    return env


def server_info(runtime: Path) -> dict[str, Any] | None:
    """The `jpserver-<pid>.json` the server writes once it listens, or None yet."""
    for path in runtime.glob("jpserver-*.json"):
        try:
            info: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # being written
        return info
    return None


def terminate_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, wait for it, SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_LIMIT_S)
    deadline = time.monotonic() + STOP_LIMIT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.1)  # poll interval while the server shuts its kernels down
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_LIMIT_S)


def test_readme_first_command_serves_the_quickstart(tmp_path: Path) -> None:
    port = free_port()
    command = f"{readme_first_command()} --no-browser --port {port}"
    env = command_env(tmp_path)
    runtime = tmp_path / "runtime"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "readme-command.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = started + START_LIMIT_S
        info = None
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the command exited with {proc.returncode}:\n{log_tail(log)}")
            info = info or server_info(runtime)
            if info is not None:
                status, _ = http_get(f"http://127.0.0.1:{port}/api/status?token={info['token']}")
                if status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"not served within {START_LIMIT_S:g} s:\n{log_tail(log)}")
            time.sleep(0.2)  # poll interval; the deadline above bounds the wait
        served_s = time.monotonic() - started

        assert info["port"] == port
        assert os.getpgid(info["pid"]) == proc.pid, "the server is not the command's own process"
        # Given a file, Jupyter serves the file's folder and opens the file in it.
        root = Path(info["root_dir"]).resolve()
        served = (REPO / QUICKSTART).resolve().relative_to(root).as_posix()
        token = info["token"]
        assert token, "the server runs without a token"
        base = f"http://127.0.0.1:{port}"
        status, body = http_get(f"{base}/api/contents/{served}?token={token}")
        assert status == 200, f"{served} is not served from {root}"
        model = json.loads(body)
        assert model["type"] == "notebook"
        assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"
        status, page = http_get(f"{base}/lab/tree/{served}?token={token}")
        assert status == 200
        assert b"JupyterLab" in page
        assert http_get(f"{base}/api/contents/{served}")[0] == 403, "served without the token"
        # The page the command would have opened in a browser is the quickstart in Lab.
        opener = next(runtime.glob("jpserver-file-to-run-*-open.html")).read_text(errors="replace")
        assert f"lab/tree/{served}" in opener, opener
        print(f"README command served the quickstart after {served_s:.1f} s")
    finally:
        terminate_group(proc)
    assert http_get(f"http://127.0.0.1:{port}/api/status")[0] == 0, "still answering after stop"
