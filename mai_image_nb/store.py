"""Where a client keeps its generations: the history, else memory for the client's life.

The memory takes over when there is no history (`history=False`) or when the history
cannot be written (full disk, read-only folder), so asking again never pays again.
Imports no HTTP and no widgets.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ._userwarn import warn_user
from .errors import MaiImageError

if TYPE_CHECKING:
    from .generation import Generation
    from .history import History

__all__ = ["GenerationStore"]

log = logging.getLogger(__name__)


class GenerationStore:
    """The client's cache: looks up and keeps generations by cache key, thread-safely."""

    def __init__(self, history: History | None, *, owns_history: bool) -> None:
        self.history = history
        self._owns_history = owns_history
        self._memory: dict[str, Generation] = {}  # encoded bytes only: see Generation
        self._lock = threading.Lock()
        self._warned = False

    def lookup(self, key: str) -> Generation | None:
        """The generation stored under `key`, from the history or from memory."""
        found = self.history.lookup(key) if self.history is not None else None
        if found is None:
            with self._lock:
                found = self._memory.get(key)
        return found

    def keep(self, generation: Generation, key: str) -> None:
        """Store `generation` in the history; if that fails, in memory, with one warning."""
        if self.history is not None:
            import sqlite3  # loaded with the history already; imported here to keep import light

            try:
                self.history.add(generation, cache_key=key)
                return
            except (OSError, sqlite3.Error, MaiImageError) as exc:
                self._warn_not_stored(self.history, exc)
        with self._lock:
            self._memory[key] = generation

    def _warn_not_stored(self, history: History, exc: BaseException) -> None:
        """One warning per store (so per client), naming the folder and the cause."""
        log.warning("could not store a generation in the history at %s: %s", history.path, exc)
        with self._lock:
            if self._warned:
                return
            self._warned = True
        warn_user(
            f"the history folder {history.path} cannot store new images ({exc}); this "
            "client keeps them in memory until it is closed, so asking again does not pay again",
            RuntimeWarning,
            fallback=str(history.path),
        )

    def close(self) -> None:
        """Let go of the memory, and close the history when this store opened it."""
        with self._lock:
            self._memory.clear()
        if self.history is not None and self._owns_history:
            self.history.close()
