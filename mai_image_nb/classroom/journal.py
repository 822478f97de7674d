"""The ledger's SQLite file: one writer thread that commits in groups, and a reader.

SQLite in WAL mode with `synchronous=FULL` fsyncs at every COMMIT; a class sends many
requests at once, so every write waiting is committed together (one fsync for the group),
each in its own savepoint so one failing write fails alone. A caller that needs its write
durable before going on (a request marked sent) commits the group itself on its own thread,
so its wait is one commit, not a hand-over to another thread and back. Writes nobody waits
for (settling, notes) ride along with the next such commit, or are committed by the writer
thread within `FLUSH_DELAY_S`: one background commit for many writes, which then seldom
holds the disk when a request is about to go upstream.

The WAL file is grown to its working size when the journal opens (`presize_wal`): SQLite
reuses the file from its start after each checkpoint, but a fresh one grows with every
commit, and each commit's flush to disk then flushes the file's new length as well.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUSY_TIMEOUT_S", "Journal", "Statement", "presize_wal"]

BUSY_TIMEOUT_S = 30.0
GROUP_MAX = 256  # writes committed together at most
FLUSH_DELAY_S = 0.05  # how long a write nobody waits for may sit before the writer commits it
WAL_FRAMES = 1024  # a little over SQLite's auto-checkpoint (1000 pages): the WAL's working size
WAL_FREE_FACTOR = 16  # grow it only where the disk has this many times its size free

Statement = tuple[str, Sequence[Any]]


class _Job:
    __slots__ = ("done", "error", "rowcounts", "rowids", "statements", "waited")

    def __init__(self, statements: list[Statement], *, waited: bool) -> None:
        self.statements = statements
        self.waited = waited
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


def presize_wal(conn: sqlite3.Connection, path: Path) -> bool:
    """Grow `path`'s WAL file to `WAL_FRAMES` pages, if it is smaller; True if it was grown.

    A transaction larger than the page cache spills its pages into the WAL, and rolling it
    back leaves the file that long with the database unchanged. The frames written after are
    then overwrites, which flush faster than appends (bench/README.md, "ledger commit before
    a send"). Skipped where the disk is short of space: the WAL then grows as it must, and a
    full disk is the ledger's to report. (Should the disk fill while the WAL grows, the part
    grown stays: later commits are written into it, needing no new space.)
    """
    wal = path.with_name(path.name + "-wal")
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    wanted = WAL_FRAMES * (page_size + 24) + 32  # frame headers and the file's header
    try:
        if wal.stat().st_size >= wanted or shutil.disk_usage(path.parent).free < (
            WAL_FREE_FACTOR * wanted
        ):
            return False
    except OSError:
        return False
    cache_size = int(conn.execute("PRAGMA cache_size").fetchone()[0])
    busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    try:
        conn.execute("PRAGMA cache_size = 16")  # pages: the blob below must spill
        conn.execute("PRAGMA busy_timeout = 0")  # another writer at work: not worth a wait
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE presize_wal (data BLOB)")
        # A little more than wanted: the last pages stay in the cache, and are not written.
        blob = (WAL_FRAMES + 64) * page_size
        conn.execute("INSERT INTO presize_wal VALUES (zeroblob(?))", (blob,))
    except sqlite3.Error:
        return False  # locked, or the disk filled meanwhile (what was grown takes commits)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA cache_size = {cache_size}")
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    return True


class Journal:
    """Group-committing writes and locked reads over one SQLite file."""

    def __init__(self, path: Path, schema: str, *, presize: bool = True) -> None:
        """Open (creating) `path` with `schema`; `presize=False` leaves the WAL to grow as
        SQLite grows it (the benchmark's baseline)."""
        self.path = path
        self._writer = connect(path)
        try:
            self._writer.executescript(schema)
            if presize:
                presize_wal(self._writer, path)
            self._reader = connect(path)
        except sqlite3.Error:
            self._writer.close()
            raise
        self._read_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._commit_lock = threading.Lock()  # whoever holds it commits the queued group
        self._wake = threading.Event()  # a write nobody waits for was queued
        self._stopping = threading.Event()
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

        A waiting caller commits the queued writes itself, its own among them, unless a
        commit under way took it (then it is done once that commit lets go of the lock).
        """
        job = _Job(statements, waited=wait)
        self._jobs.put(job)
        if not wait:
            self._wake.set()
            return job
        while not job.done.is_set():
            with self._commit_lock:
                # Writes leave the queue only under this lock, oldest first: ours is either
                # done or still queued, and a few groups at most are ahead of it.
                if not job.done.is_set():
                    self._commit_group()
        if job.error is not None:
            raise job.error
        return job

    def _commit_group(self) -> bool:
        """Commit up to GROUP_MAX queued jobs (caller holds the lock); True if some were."""
        group: list[_Job] = []
        while len(group) < GROUP_MAX and not self._jobs.empty():  # only we take from it
            group.append(self._jobs.get_nowait())
        return bool(group) and self._commit(group)

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Commit what is queued, stop the writer, close both connections; True if it ended."""
        ended = True
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout_s)
            ended = not self._thread.is_alive()
        if ended:
            self._writer.close()
        with self._read_lock:
            self._reader.close()
        return ended

    def _run(self) -> None:
        """Commit writes nobody waits for, a few at a time, until `close()`."""
        while True:
            self._wake.wait()
            self._stopping.wait(FLUSH_DELAY_S)  # let more gather (or ride a waiting commit)
            self._wake.clear()  # before taking the queue: a later write wakes us again
            while True:
                with self._commit_lock:  # one group at a time: a waiting caller may cut in
                    if not self._commit_group():
                        break
            if self._stopping.is_set():
                return

    def _commit(self, group: list[_Job]) -> bool:
        """Commit `group` in one transaction; False if the commit itself failed."""
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
        except BaseException as exc:
            # The whole commit failed (a full disk, an I/O error, an interrupt): a waiting
            # caller hears of it; a write nobody waits for (a settlement) is queued again for
            # a later commit rather than lost.
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for job in group:
                if job.waited:
                    job.error = job.error or exc
                    job.done.set()
                else:
                    job.error = None
                    job.rowids.clear()
                    job.rowcounts.clear()
                    self._jobs.put(job)
            if not isinstance(exc, sqlite3.Error):
                raise
            return False
        for job in group:
            job.done.set()
        return True
