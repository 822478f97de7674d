"""Who wants to hear about each new image (`Client.on_generation`), and telling them safely."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["Listeners"]

log = logging.getLogger(__name__)

Listener = Callable[["Generation"], None]


class Listeners(list[Listener]):
    """A list of listeners; a failing one is logged and never costs the caller the image."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add `listener`; returns a function that removes it (safe to call twice)."""
        self.append(listener)

        def unsubscribe() -> None:
            if listener in self:
                self.remove(listener)

        return unsubscribe

    def notify(self, generation: Generation) -> None:
        for listener in list(self):
            try:
                listener(generation)
            except Exception:  # a broken display must not cost the user the image
                log.warning("a generation listener failed", exc_info=True)
