"""The class's books: students, hashed tokens, budgets and a row per request, in SQLite.

Money is kept in whole micro-dollars (integers), so sums are exact to the cent and beyond.
Durability: WAL with `synchronous=FULL`; a row is committed before its request goes upstream,
so after a crash (kill -9) a request whose outcome is unknown is found and settled at its
estimate when the ledger is opened again. Settling is written without waiting for the disk:
a settlement lost to a crash leaves its row open, which the next start settles at the
estimate, so a student is still charged for every image they received. Requests waiting in
the queue hold their money in memory only: nothing was sent for them, so a crash releases
them. Every decision about money is taken on the in-memory accounts, under one lock.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .journal import Journal, Statement
from .terms import (
    LedgerError,
    hash_token,
    now_iso,
    to_usd,
)

__all__ = [
    "Hold",
    "Ledger",
    "LedgerWriteError",
    "Refusal",
    "Student",
]

log = logging.getLogger("mai_image_nb.classroom")


class LedgerWriteError(Exception):
    """The ledger could not record a request (disk full, read-only, I/O error): so it must
    not be sent."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    budget_micro INTEGER NOT NULL,
    spent_micro INTEGER NOT NULL DEFAULT 0,
    reserved_micro INTEGER NOT NULL DEFAULT 0,  -- unused: a reservation is a 'sent' request row
    revoked INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_seen TEXT
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL REFERENCES students(name),
    time TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,            -- sent, charged, released, recovered
    http_status INTEGER,
    reserved_micro INTEGER NOT NULL,
    cost_micro INTEGER NOT NULL DEFAULT 0,
    image_file TEXT,
    finished TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_student ON requests(student, id);
CREATE INDEX IF NOT EXISTS requests_open ON requests(status) WHERE status = 'sent';
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Student:
    """A student as the ledger knows them (never their token)."""

    name: str
    budget_micro: int
    spent_micro: int
    reserved_micro: int
    revoked: bool


@dataclass(frozen=True)
class Refusal:
    """Why a request may not go ahead: the budget, and what is spent or set aside."""

    budget_micro: int
    committed_micro: int
    estimate_micro: int


@dataclass
class _Account:
    """A student's money in memory: what the ledger holds, plus what queued requests hold."""

    token_hash: str
    budget_micro: int
    spent_micro: int = 0
    reserved_micro: int = 0
    held_micro: int = 0
    revoked: bool = False
    images: int = 0
    errors: int = 0
    last_seen: str | None = None
    open_rows: set[int] = field(default_factory=set)

    def committed(self) -> int:
        return self.spent_micro + self.reserved_micro + self.held_micro


class Hold:
    """Money set aside for one request waiting in the queue (nothing sent yet)."""

    def __init__(self, student: str, estimate_micro: int) -> None:
        self.student = student
        self.estimate_micro = estimate_micro
        self.row_id: int | None = None  # set once the request is committed as sent
        self.sent_at: str | None = None  # and when
        self.done = False


def _is_image(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


class Ledger:
    """Students and requests in one SQLite file, with the accounts kept in memory.

    Opening it settles at their estimate the requests a crash left open (`recovered`).
    Every method is thread-safe.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.write_failing = False  # the last request could not be recorded (logged once)
        self._journal = Journal(self.path, _SCHEMA)
        try:
            self.recovered = self._recover()
            self._accounts = self._load()
        except BaseException:
            self._journal.close()
            raise
        self._by_hash = {a.token_hash: name for name, a in self._accounts.items()}
        self._journal.start()

    def close(self) -> None:
        """Commit every write still queued, then close the file."""
        if not self._journal.close():
            raise RuntimeError("the ledger's writer did not stop; its file is left open")

    def _recover(self) -> int:
        rows = self._journal.read("SELECT id, student, reserved_micro, time FROM requests "
                                  "WHERE status = 'sent'")  # fmt: skip
        stamp = now_iso()
        statements: list[Statement] = []
        for row_id, student, reserved, sent_at in rows:
            statements.append(
                (
                    "UPDATE requests SET status = 'recovered', cost_micro = ?, "
                    "finished = ? WHERE id = ?",
                    (reserved, stamp, row_id),
                )
            )
            statements.append(("UPDATE students SET spent_micro = spent_micro + ?, last_seen = "
                               "max(coalesce(last_seen, ''), ?) WHERE name = ?",
                               (reserved, sent_at, student)))  # fmt: skip
        # Ledgers of earlier versions kept a running total of what was reserved here.
        statements.append(("UPDATE students SET reserved_micro = 0", ()))
        self._journal.run_now(statements)
        return len(rows)

    def _load(self) -> dict[str, _Account]:
        accounts = {
            name: _Account(token_hash, budget, spent, 0, 0, bool(revoked), last_seen=last_seen)
            for name, token_hash, budget, spent, revoked, last_seen in self._journal.read(
                "SELECT name, token_hash, budget_micro, spent_micro, revoked, last_seen "
                "FROM students"
            )
        }
        for name, images, errors in self._journal.read(
            "SELECT student, SUM(http_status BETWEEN 200 AND 299), "
            "SUM(http_status >= 400 OR status = 'recovered') FROM requests GROUP BY student"
        ):
            if name in accounts:
                accounts[name].images, accounts[name].errors = images or 0, errors or 0
        return accounts

    # -- students -----------------------------------------------------------------------------

    def add_student(self, name: str, token: str, budget_micro: int) -> None:
        """Add a student with the hash of `token`. Raises LedgerError if the name exists."""
        digest = hash_token(token)
        with self._lock:
            if name in self._accounts or digest in self._by_hash:
                raise LedgerError(f"there is already a student called {name!r}")
            try:
                self._journal.write([(
                    "INSERT INTO students (name, token_hash, budget_micro, created) "
                    "VALUES (?, ?, ?, ?)", (name, digest, budget_micro, now_iso()),
                )])  # fmt: skip
            except sqlite3.IntegrityError:
                raise LedgerError(f"there is already a student called {name!r}") from None
            self._accounts[name] = _Account(digest, budget_micro)
            self._by_hash[digest] = name

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._accounts)

    def _student_locked(self, name: str) -> Student:
        account = self._accounts[name]
        return Student(name, account.budget_micro, account.spent_micro,
                       account.reserved_micro + account.held_micro, account.revoked)  # fmt: skip

    def student_for_token(self, token: str) -> Student | None:
        """The student whose token this is; None if unknown. Compares digests in constant time."""
        digest = hash_token(token)
        with self._lock:
            name = self._by_hash.get(digest)
            if name is None or not hmac.compare_digest(self._accounts[name].token_hash, digest):
                return None
            return self._student_locked(name)

    def student(self, name: str) -> Student:
        """Raises LedgerError for an unknown name."""
        with self._lock:
            if name not in self._accounts:
                raise LedgerError(f"no student called {name!r}")
            return self._student_locked(name)

    def set_budget(self, name: str, budget_micro: int) -> None:
        with self._lock:
            if name not in self._accounts:
                raise LedgerError(f"no student called {name!r}")
            self._journal.write([("UPDATE students SET budget_micro = ? WHERE name = ?",
                                  (budget_micro, name))])  # fmt: skip
            self._accounts[name].budget_micro = budget_micro

    def revoke(self, name: str) -> None:
        with self._lock:
            if name not in self._accounts:
                raise LedgerError(f"no student called {name!r}")
            self._journal.write([("UPDATE students SET revoked = 1 WHERE name = ?", (name,))])
            self._accounts[name].revoked = True

    def status(self) -> list[dict[str, Any]]:
        """One dict per student: name, budget_usd, spent_usd, images, errors, last_seen, ..."""
        with self._lock:
            return [
                {
                    "name": name,
                    "budget_usd": to_usd(a.budget_micro),
                    "spent_usd": to_usd(a.spent_micro),
                    "reserved_usd": to_usd(a.reserved_micro + a.held_micro),
                    "images": a.images,
                    "errors": a.errors,
                    "last_seen": a.last_seen,
                    "revoked": a.revoked,
                }
                for name, a in sorted(self._accounts.items())
            ]

    # -- money --------------------------------------------------------------------------------

    def hold(self, name: str, estimate_micro: int) -> Hold | Refusal:
        """Set `estimate_micro` aside for a queued request, or say why the budget forbids it."""
        with self._lock:
            account = self._accounts.get(name)
            if account is None:
                raise LedgerError(f"no student called {name!r}")
            if account.committed() + estimate_micro > account.budget_micro:
                return Refusal(account.budget_micro, account.committed(), estimate_micro)
            account.held_micro += estimate_micro
        return Hold(name, estimate_micro)

    def drop(self, hold: Hold) -> None:
        """Give back a hold whose request was never sent (a no-op once sent or done)."""
        with self._lock:
            if hold.done or hold.row_id is not None:
                return
            hold.done = True
            self._accounts[hold.student].held_micro -= hold.estimate_micro

    def mark_sent(self, hold: Hold, params: dict[str, Any]) -> int:
        """Commit the request as sent, its estimate reserved, and wait for the disk.

        The row alone is the reservation (recovery settles every 'sent' row), so the commit
        a student waits for writes nothing else; the student's row follows with `finish`.
        """
        hold.sent_at = stamp = now_iso()
        text = json.dumps(params, ensure_ascii=False, sort_keys=True)
        try:
            job = self._journal.write([
                ("INSERT INTO requests (student, time, params, status, reserved_micro) "
                 "VALUES (?, ?, ?, 'sent', ?)", (hold.student, stamp, text, hold.estimate_micro)),
            ])  # fmt: skip
        except sqlite3.Error as exc:
            if not self.write_failing:
                log.error("ledger %s cannot be written (%s): requests are refused", self.path, exc)
            self.write_failing = True
            raise LedgerWriteError(str(exc)) from exc
        if self.write_failing:
            self.write_failing = False
            log.warning("ledger %s is written again", self.path)
        row_id = job.rowids[0]
        assert row_id is not None
        with self._lock:
            account = self._accounts[hold.student]
            account.held_micro -= hold.estimate_micro
            account.reserved_micro += hold.estimate_micro
            account.last_seen = stamp
            account.open_rows.add(row_id)
            hold.row_id = row_id
        return row_id

    def finish(self, hold: Hold, *, http_status: int | None, cost_micro: int | None) -> None:
        """Settle a sent request at `cost_micro`, or release it (None: nothing was charged).

        The accounts change at once; the row is written without waiting for the disk.
        """
        assert hold.row_id is not None, "finish() is for requests marked sent"
        status = "released" if cost_micro is None else "charged"
        cost = cost_micro or 0
        with self._lock:
            if hold.done:
                return
            hold.done = True
            account = self._accounts[hold.student]
            account.reserved_micro -= hold.estimate_micro
            account.spent_micro += cost
            account.open_rows.discard(hold.row_id)
            if _is_image(http_status):
                account.images += 1
            elif http_status is None or http_status >= 400:
                account.errors += 1
            self._journal.write([
                ("UPDATE requests SET status = ?, http_status = ?, cost_micro = ?, finished = ? "
                 "WHERE id = ?", (status, http_status, cost, now_iso(), hold.row_id)),
                ("UPDATE students SET spent_micro = spent_micro + ?, last_seen = ? "
                 "WHERE name = ?", (cost, hold.sent_at, hold.student)),
            ], wait=False)  # fmt: skip

    def note_refusal(self, name: str, params: dict[str, Any], http_status: int) -> None:
        """Record a request refused before it was sent (budget, bad body): no money moves."""
        stamp = now_iso()
        text = json.dumps(params, ensure_ascii=False, sort_keys=True)
        with self._lock:
            account = self._accounts[name]
            account.errors += 1
            account.last_seen = stamp
            self._journal.write([
                ("INSERT INTO requests (student, time, params, status, http_status, "
                 "reserved_micro, finished) VALUES (?, ?, ?, 'released', ?, 0, ?)",
                 (name, stamp, text, http_status, stamp)),
                ("UPDATE students SET last_seen = ? WHERE name = ?", (stamp, name)),
            ], wait=False)  # fmt: skip

    # -- what the teacher reads -----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        rows = self._journal.read("SELECT value FROM meta WHERE key = ?", (key,))
        return None if not rows else str(rows[0][0])

    def set_meta(self, key: str, value: str) -> None:
        self._journal.write([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              (key, value))], wait=False)  # fmt: skip

    def images(self, limit: int) -> list[dict[str, Any]]:
        """The latest requests answered with an image: id, name, prompt, time (newest first)."""
        with contextlib.suppress(sqlite3.Error):  # a full disk: show what is committed
            self.flush()  # settled rows may still be queued (see journal.FLUSH_DELAY_S)
        rows = self._journal.read(
            "SELECT id, student, params, time FROM requests "
            "WHERE http_status BETWEEN 200 AND 299 ORDER BY id DESC LIMIT ?", (limit,),
        )  # fmt: skip
        out = []
        for row_id, student, params, stamp in rows:
            try:
                prompt = str(json.loads(params).get("prompt", ""))
            except (ValueError, AttributeError):
                prompt = ""
            out.append({"id": row_id, "name": student, "prompt": prompt, "time": stamp})
        return out

    def flush(self) -> None:
        """Wait until every write queued so far is committed (tests, audits)."""
        self._journal.write([])

    def totals(self) -> dict[str, int]:
        """Per student, micro-dollars charged, summed from the committed request rows."""
        self.flush()
        rows = self._journal.read("SELECT student, SUM(cost_micro) FROM requests GROUP BY student")
        return {name: int(total or 0) for name, total in rows}
