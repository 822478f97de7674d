"""Fixtures for the in-process widget tests: Studios that are always closed, and bounded waits.

No kernel: widgets are built in this process, values are set, buttons `.click()`ed, and the
tests wait on the panel's idle Events (or a trait) with a deadline, never a guessed sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import mai_image_nb as mai
from mai_image_nb.studio import Studio

from .helpers import DEADLINE_S, assert_no_studio_threads


@pytest.fixture
def make_studio() -> Iterator[Callable[..., Studio]]:
    """Build Studios; every one is closed at the end and no worker thread outlives the test."""
    made: list[Studio] = []

    def make(client: mai.Client | None = None, *, page_size: int = 12) -> Studio:
        studio = Studio(client, page_size=page_size)
        made.append(studio)
        return studio

    yield make
    for studio in made:
        assert studio.wait_idle(DEADLINE_S), "a Studio was still busy at the end of the test"
        studio.close()
    assert_no_studio_threads()


@pytest.fixture
def studio(client: mai.Client, make_studio: Callable[..., Studio]) -> Studio:
    """A Studio over the conftest `client` (API mode against the simulator).

    `client` comes first so the Studio is closed before the client is.
    """
    return make_studio(client)
