"""The ledger's SQLite file: one writer thread that commits in groups, and a reader.

SQLite in WAL mode with `synchronous=FULL` fsyncs at every COMMIT; a class sends many
requests at once, so the writer takes every write waiting and commits them together (one
fsync for the group), each in its own savepoint so one failing write fails alone. A caller
that needs its write durable before going on (a request marked sent) waits for the commit;
others (settling, notes) do not.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUSY_TIMEOUT_S", "Journal", "Statement"]

BUSY_TIMEOUT_S = 30.0
GROUP_MAX = 256  # writes committed together at most

Statement = tuple[str, Sequence[Any]]


class _Job:
    __slots__ = ("done", "error", "rowcounts", "rowids", "statements")

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.rowids: list[int | None] = []
        self.rowcounts: list[int] = []


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    try:
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


class Journal:
    """Group-committing writes and locked reads over one SQLite file."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._writer = connect(path)
        try:
            self._writer.executescript(schema)
            self._reader = connect(path)
        except sqlite3.Error:
            self._writer.close()
            raise
        self._read_lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._commit_lock = threading.Lock()  # whoever holds it commits the queued group
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (after any recovery done with `run_now`)."""
        self._thread = threading.Thread(target=self._run, name="classroom-ledger", daemon=True)
        self._thread.start()

    def run_now(self, statements: list[Statement]) -> None:
        """Run writes in one transaction on the caller's thread (before `start()` only)."""
        assert self._thread is None
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self._writer.execute(sql, args)
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise

    def write(self, statements: list[Statement], *, wait: bool = True) -> _Job:
        """Queue writes (one savepoint); with `wait`, return once committed (or raise).

        A waiting caller that finds no commit under way commits the queued group itself
        (saving two thread switches on the way to the disk); else the writer thread does.
        """
        job = _Job(statements)
        self._jobs.put(job)
        if not wait:
            return job
        if self._commit_lock.acquire(blocking=False):
            try:
                if not job.done.is_set() and self._commit_queued():
                    self._jobs.put(None)  # the stop sentinel is the writer thread's
            finally:
                self._commit_lock.release()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job

    def _commit_queued(self, first: _Job | None = None) -> bool:
        """Commit `first` and every job queued now (caller holds the commit lock).

        Returns True when the stop sentinel was among them (it is put back for the writer).
        """
        group = [first] if first is not None else []
        stopping = False
        while len(group) < GROUP_MAX:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stopping = True
            else:
                group.append(job)
        if group:
            self._commit(group)
        return stopping

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Commit what is queued, stop the writer, close both connections; True if it ended."""
        ended = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout_s)
            ended = not self._thread.is_alive()
        if ended:
            self._writer.close()
        with self._read_lock:
            self._reader.close()
        return ended

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            with self._commit_lock:
                if first is None:
                    self._commit_queued()
                    return
                if self._commit_queued(first):
                    self._jobs.put(None)  # a caller drained the sentinel with this group

    def _commit(self, group: list[_Job]) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                conn.execute("SAVEPOINT job")
                try:
                    for sql, args in job.statements:
                        cursor = conn.execute(sql, args)
                        job.rowids.append(cursor.lastrowid)
                        job.rowcounts.append(cursor.rowcount)
                    conn.execute("RELEASE job")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    job.error = exc
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in group:
                job.error = job.error or exc
        finally:
            for job in group:
                job.done.set()
