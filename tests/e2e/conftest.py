"""Fixtures of the end-to-end layer: kernel environments, a real Jupyter server, headless Chromium.

Every process here is started in its own session and stopped by its id (SIGTERM, then SIGKILL
to its process group); every wait polls a condition against a deadline.
See shared/design/TESTING.md for the facts these fixtures follow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root needs it
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",  # the networking flags stop calls to the internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_S = 60.0
SERVER_STOP_S = 15.0
VIEWPORT = {"width": 1400, "height": 1000}
# Lab's news toast would cover the page; disabled in the temporary config dir.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kernel_env(mai_image_home: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a kernel: no key, its own history, this checkout first.

    The checkout goes first on PYTHONPATH so kernels import the code under test (the same
    code pytest imports), whatever state the editable install of the venv is in.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("AIMLAPI_KEY", "AIMLAPI_BASE_URL")}
    env["MAI_IMAGE_HOME"] = str(mai_image_home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def http_get(url: str, *, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of a GET; a refused connection is status 0."""
    request = urllib.request.Request(url, headers={"Accept": "application/json, text/html"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process_group(proc: subprocess.Popen[Any], grace_s: float = SERVER_STOP_S) -> None:
    """SIGTERM `proc` (started with start_new_session), wait, then SIGKILL its whole group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (and proc, if still up)
    proc.wait(timeout=grace_s)


# -- a Jupyter server ---------------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A running `jupyter lab` with a known token, serving `root` (Lab, Notebook 7 and Voila)."""

    url: str
    token: str
    root: Path
    mai_image_home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # the server's environment (its own config, data and settings dirs)

    def address(self, path: str) -> str:
        """`url/path` with the token in the query."""
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        """JSON of a REST call (`api/...`); raises on an HTTP error."""
        request = urllib.request.Request(
            f"{self.url}/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def notebook_copy(self, name: str, folder: str) -> str:
        """Copy notebooks/`name` into `folder` of the root; its path relative to the root.

        Each test opens its own copy: two front ends opening one path would share a kernel.
        """
        target = self.root / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NOTEBOOKS / name, target)
        return f"{folder}/{name}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel of this server through its REST API."""
        for kernel in self.api("api/kernels"):
            with contextlib.suppress(urllib.error.HTTPError):  # already gone
                self.api(f"api/kernels/{kernel['id']}", method="DELETE")


def _write_jupyter_config(config_dir: Path) -> None:
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(PAGE_CONFIG))


def _write_lab_settings(settings_dir: Path, settings: dict[str, dict[str, Any]]) -> None:
    """User settings of this server only: {"@jupyterlab/pkg:plugin": {...}} as Lab stores them."""
    for plugin, values in settings.items():
        package, name = plugin.rsplit(":", 1)
        target = settings_dir / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


@contextlib.contextmanager
def running_jupyter(
    base: Path, *, lab_settings: dict[str, dict[str, Any]] | None = None
) -> Iterator[JupyterServer]:
    """`jupyter lab` on a free port with a token, over a copy of notebooks/ in `base`/root.

    Its config, data, runtime, Lab settings and workspaces dirs are all under `base`, so
    trusting a notebook or choosing a theme touches nobody's own Jupyter files.
    """
    root, config, runtime, home, data, settings, workspaces = (
        base / n for n in ("root", "config", "runtime", "home", "data", "settings", "workspaces")
    )
    for folder in (root, config, runtime, home, data, settings, workspaces):
        folder.mkdir()
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    _write_jupyter_config(config)
    _write_lab_settings(settings, lab_settings or {})
    token = secrets.token_hex(16)
    port = free_port()
    env = kernel_env(
        home,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_DATA_DIR=str(data),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
    )
    jupyter = Path(sys.executable).with_name("jupyter")
    command = [
        str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    log = base / "jupyter.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, home, proc, log, env)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while http_get(server.address("api/status"))[0] != 200:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {SERVER_START_S:g} s:\n{log_tail(log)}")
            time.sleep(0.1)  # poll interval; the deadline above bounds the wait
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError):
                server.shutdown_kernels()
        stop_process_group(proc)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / f"jupyter-server{base.name.removeprefix('jupyter')}.log")


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """`jupyter lab` for the session (the light theme, Lab's default)."""
    with running_jupyter(tmp_path_factory.mktemp("jupyter")) as server:
        yield server


# -- a browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def artifact_name(nodeid: str) -> str:
    """A file-name-safe stem for a test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; a full-page screenshot lands in tests/artifacts/."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()  # Notebook 7 logs harmless page errors: they do not fail a test
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{artifact_name(request.node.nodeid)}.png"))
        finally:
            context.close()
