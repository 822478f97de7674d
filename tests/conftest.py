"""Fixtures shared by every layer: a clean environment, a simulator, clients on loopback.

Each test gets its own MAI_IMAGE_HOME and no AIMLAPI_* variables, so nothing a
developer has set (or a real key) can leak into a test or out of one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer

# A key that must never appear anywhere but the Authorization header sent to base_url.
CANARY_KEY = "sk-canary-3f9a7c41d2e84b6a"


_DESELECTED = pytest.StashKey[int]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED] = config.stash.get(_DESELECTED, 0) + len(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `pytest -m e2e` where the marker expression deselected every test is a success, not
    # "no tests ran" (exit 5). Only a `-m` run without `-k` qualifies: a `-k` typo, or a run
    # that collected nothing at all, still exits 5.
    if exitstatus != pytest.ExitCode.NO_TESTS_COLLECTED:
        return
    config = session.config
    markexpr = config.getoption("markexpr", default="") or ""
    keyword = config.getoption("keyword", default="") or ""
    if markexpr and not keyword and config.stash.get(_DESELECTED, 0) > 0:
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key, no base URL, and a private history folder for every test."""
    for name in ("AIMLAPI_KEY", "AIMLAPI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "mai_home"
    monkeypatch.setenv("MAI_IMAGE_HOME", str(home))
    return home


@pytest.fixture
def server() -> Iterator[OfflineServer]:
    """A simulator on 127.0.0.1 with small images (fast), that must end without errors."""
    with OfflineServer(image_scale=0.125, seed=7) as srv:
        yield srv
        assert not srv.errors, f"the simulator raised: {srv.errors!r}"


@pytest.fixture
def client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    """A client in API mode (with the canary key) against `server`, with its own history."""
    with mai.Client(
        api_key=CANARY_KEY,
        base_url=server.url,
        offline=False,
        history=tmp_path / "history",
        timeout=5.0,
    ) as c:
        c._use_clock(FastClock(), rand=lambda: 0.0)
        yield c


class FastClock:
    """A real monotonic clock whose waits are recorded and skipped (back-off tests never sleep)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def wall(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def wait(self, delay_s: float, cancel: threading.Event | None) -> bool:
        with self._lock:
            self.waits.append(delay_s)
            self._offset += max(0.0, delay_s)
        return cancel is not None and cancel.is_set()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG logging on for this package, requests and urllib3."""
    with (
        caplog.at_level(logging.DEBUG, logger="mai_image_nb"),
        caplog.at_level(logging.DEBUG, logger="urllib3"),
        caplog.at_level(logging.DEBUG, logger="requests"),
    ):
        yield caplog
