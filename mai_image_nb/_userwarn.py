"""Warnings attributed to the user's line of code, never to a line inside this package.

`warnings.warn(stacklevel=N)` with a fixed N points inside the package whenever the call
path changes (a batch, the panel). Here the stack is walked out of the package instead;
from a worker thread (a batch) the thread that waits on it, usually the notebook's main
thread, is walked; with no user line anywhere (a panel click), the warning is attributed to
`fallback`, e.g. the history folder it is about. Imports nothing from the package.
"""

from __future__ import annotations

import inspect
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType

__all__ = ["warn_user"]

_PACKAGE = str(Path(__file__).resolve().parent)
_PLUMBING = (_PACKAGE, str(Path(threading.__file__).resolve().parent / "concurrent"))


def _inside(frame: FrameType) -> bool:
    name = frame.f_code.co_filename
    return name.startswith(_PLUMBING) or name == threading.__file__


def _user_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame outside the package above a frame inside it, or None."""
    seen_package = False
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE):
            seen_package = True
        elif seen_package and not _inside(frame):
            return frame
        frame = frame.f_back
    return None


def warn_user(message: str, category: type[Warning], fallback: str) -> None:
    """Warn once per call site, from the user's line (see the module docstring)."""
    here = inspect.currentframe()
    found = _user_frame(here)
    if found is None and threading.current_thread() is not threading.main_thread():
        main = sys._current_frames().get(threading.main_thread().ident or -1)
        found = _user_frame(main)
    if found is None:
        warnings.warn_explicit(message, category, fallback, 0, module="mai_image_nb")
        return
    module = found.f_globals.get("__name__", "__main__")
    registry = found.f_globals.setdefault("__warningregistry__", {})
    warnings.warn_explicit(
        message,
        category,
        found.f_code.co_filename,
        found.f_lineno,
        module=module,
        registry=registry,
        module_globals=found.f_globals,
    )
