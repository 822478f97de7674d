"""Fixtures for the offline simulator's own tests: servers that must end without errors.

Named `sim*` so they never shadow the shared `server` fixture of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from mai_image_nb.offline import OfflineServer

SimFactory = Callable[..., OfflineServer]
SMALL_SCALE = 0.125  # 128x128 for 1:1: fast, still a real PNG of the right ratio


@pytest.fixture
def sim_factory() -> Iterator[SimFactory]:
    """Start simulators on 127.0.0.1:0 (small images unless told); close and check them after."""
    made: list[OfflineServer] = []

    def make(**kwargs: Any) -> OfflineServer:
        kwargs.setdefault("image_scale", SMALL_SCALE)
        srv = OfflineServer(**kwargs)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.close()
    for srv in made:
        assert not srv.errors, f"the simulator on port {srv.port} raised: {srv.errors!r}"


@pytest.fixture
def sim(sim_factory: SimFactory) -> OfflineServer:
    """One seeded simulator with small images."""
    return sim_factory(seed=11)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session, closed after the test (no socket left for a ResourceWarning)."""
    with requests.Session() as session:
        yield session
