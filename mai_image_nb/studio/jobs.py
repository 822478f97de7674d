"""The background runner behind each tab: one job at a time, cancellable, never stuck busy.

A click handler validates, then calls `JobRunner.start(work, show)` and returns at once; the
work runs on a daemon thread, and whatever happens the runner ends not busy and `idle` set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mai_image_nb.errors import MaiImageError

from .widgets import error_text

__all__ = ["Coalescer", "JobRunner", "Ticker"]

log = logging.getLogger(__name__)

R = TypeVar("R")

TICK_S = 0.2  # how often the elapsed time on a status line moves
JOIN_TIMEOUT_S = 10.0  # how long close() waits for a job that is still on the wire


class Ticker:
    """Calls `on_tick(elapsed_s)` every `TICK_S` on its own thread until `stop()`."""

    def __init__(self, on_tick: Callable[[float], None]) -> None:
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="mai-studio-tick", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._on_tick(time.perf_counter() - self._started)
            except Exception:
                log.debug("status tick failed", exc_info=True)
                return

    def stop(self) -> None:
        """Stop ticking; once this returns no further tick runs."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()


class JobRunner:
    """Runs one job at a time for a tab.

    `on_busy(True/False)` runs on the caller's thread when a job starts and on the worker's
    thread when it ends (in a `finally`, so a failure never leaves the tab busy). `on_error`
    gets one readable line (not escaped) for any exception the job raised.

    The busy flag and the buttons change together: `on_busy` runs under the runner's lock,
    after the flag is set (start) or cleared (end), so an enabled button always finds the
    runner idle, and a click arriving while the buttons are being re-enabled waits for the
    lock instead of being ignored.
    """

    def __init__(
        self,
        *,
        name: str,
        on_busy: Callable[[bool], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.name = name
        self.idle = threading.Event()
        self.idle.set()
        self.cancel = threading.Event()
        self._on_busy = on_busy
        self._on_error = on_error
        self._lock = threading.RLock()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._busy

    def start(
        self,
        work: Callable[[threading.Event], R],
        show: Callable[[R], None],
        *,
        on_tick: Callable[[float], None] | None = None,
    ) -> bool:
        """Run `work(cancel)` on a thread, then `show(result)` there; False if busy or closed."""
        with self._lock:
            if self._busy or self._closed:
                return False
            self._busy = True
            self.idle.clear()
            self.cancel = threading.Event()
            try:
                self._on_busy(True)
                thread = threading.Thread(
                    target=self._run,
                    args=(work, show, on_tick, self.cancel),
                    name=f"mai-studio-{self.name}",
                    daemon=True,
                )
                self._thread = thread
                thread.start()
            except BaseException:
                self._finish()
                raise
        return True

    def _run(
        self,
        work: Callable[[threading.Event], Any],
        show: Callable[[Any], None],
        on_tick: Callable[[float], None] | None,
        cancel: threading.Event,
    ) -> None:
        try:
            ticker = Ticker(on_tick) if on_tick is not None else None
            try:
                result = work(cancel)
            finally:
                if ticker is not None:
                    ticker.stop()
            show(result)
        except MaiImageError as exc:
            log.debug("%s job failed: %s", self.name, exc)
            self._report(exc)
        except Exception as exc:
            log.debug("%s job failed unexpectedly", self.name, exc_info=True)
            self._report(exc)
        finally:
            self._finish()

    def _report(self, exc: BaseException) -> None:
        try:
            self._on_error(error_text(exc))
        except Exception:
            log.debug("could not show the error", exc_info=True)

    def _finish(self) -> None:
        with self._lock:  # flag first, then the buttons, then `idle`: all before a new start
            self._busy = False
            try:
                self._on_busy(False)
            except Exception:
                log.debug("could not clear the busy state", exc_info=True)
            finally:
                if not self._busy:  # `on_busy` may have started the next job (same thread)
                    self.idle.set()

    def in_worker(self) -> bool:
        """True when called from this runner's current job thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def request_cancel(self) -> None:
        """Ask the running job to stop (cells not yet sent end as cancelled)."""
        self.cancel.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no job is running (for tests and `close`)."""
        return self.idle.wait(timeout_s)

    def close(self) -> None:
        """Refuse new jobs, cancel the running one and wait for it (bounded)."""
        with self._lock:
            self._closed = True
        self.cancel.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)


class Coalescer:
    """Runs `render()` on a background thread whenever asked; asks made meanwhile coalesce.

    Typing in a filter or a burst of new images asks many times; the page is drawn once more
    after the current drawing, never queued N times. `idle` is set while nothing is pending.
    """

    def __init__(self, render: Callable[[], None], *, name: str) -> None:
        self._render = render
        self._name = name
        self._lock = threading.Lock()
        self._pending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    def request(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._pending = True
            self.idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"mai-studio-{self._name}", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending or self._closed:
                    self._thread = None
                    self.idle.set()
                    return
                self._pending = False
            try:
                self._render()
            except Exception:
                log.debug("%s render failed", self._name, exc_info=True)

    def close(self) -> None:
        """Refuse new requests and wait (bounded) for a render in progress."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
