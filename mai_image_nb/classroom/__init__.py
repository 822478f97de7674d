"""The classroom gateway: one teacher's key, a token and a durable budget per student.

`python -m mai_image_nb.classroom --folder ./class --students names.txt` serves a class;
`Classroom` does the same from Python and `Dashboard` shows it to the teacher. The
Dashboard (ipywidgets) is imported only when first used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .room import Classroom

if TYPE_CHECKING:
    from .dashboard import Dashboard

__all__ = ["Classroom", "Dashboard"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "Dashboard":
        from .dashboard import Dashboard

        return Dashboard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
