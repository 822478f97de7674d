"""The class's books: students, hashed tokens, budgets and a row per request, in SQLite.

Money is kept in whole micro-dollars (integers), so sums are exact to the cent and beyond.
Durability: WAL with `synchronous=FULL`; a row is committed before its request goes upstream,
so after a crash (kill -9) a request whose outcome is unknown is found and settled at its
estimate by `recover()`. Requests still waiting in the queue hold their money in memory only:
nothing was sent for them, so a crash releases them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "MICRO",
    "Hold",
    "Ledger",
    "LedgerError",
    "Refusal",
    "Student",
    "hash_token",
    "to_micro",
    "to_usd",
]

MICRO = 1_000_000  # micro-dollars per dollar
BUSY_TIMEOUT_S = 30.0
NAME_MAX_CHARS = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    budget_micro INTEGER NOT NULL,
    spent_micro INTEGER NOT NULL DEFAULT 0,
    reserved_micro INTEGER NOT NULL DEFAULT 0,
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


class LedgerError(Exception):
    """A ledger operation was refused (unknown student, bad name or budget)."""


def to_micro(usd: float) -> int:
    """Dollars as whole micro-dollars (rounded half away from zero, as money is)."""
    return round(usd * MICRO)


def to_usd(micro: int) -> float:
    return micro / MICRO


def hash_token(token: str) -> str:
    """sha256 of a token, hex: what the ledger keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(name: object) -> str:
    """A student's name: 1-64 printable characters, no commas or line breaks (it goes in a CSV).

    Raises:
        LedgerError: naming what is wrong.
    """
    if not isinstance(name, str) or not name.strip():
        raise LedgerError(f"a student's name must be non-empty text, got {name!r}")
    name = name.strip()
    if len(name) > NAME_MAX_CHARS:
        raise LedgerError(f"a student's name is at most {NAME_MAX_CHARS} characters")
    if any(not ch.isprintable() or ch in ',"/\\' for ch in name):
        raise LedgerError(
            f"a student's name may not hold control characters, commas, quotes or slashes: {name!r}"
        )
    return name


def check_budget(budget_usd: object) -> int:
    """A budget in dollars (a number >= 0) as micro-dollars.

    Raises:
        LedgerError: not a finite number >= 0.
    """
    if (
        isinstance(budget_usd, bool)
        or not isinstance(budget_usd, (int, float))
        or not 0 <= budget_usd < 1e9
    ):
        raise LedgerError(f"budget_usd must be a number >= 0, got {budget_usd!r}")
    return to_micro(float(budget_usd))


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


class Hold:
    """Money set aside in memory for one request waiting in the queue (nothing sent yet)."""

    def __init__(self, student: str, estimate_micro: int) -> None:
        self.student = student
        self.estimate_micro = estimate_micro
        self.row_id: int | None = None  # set once the request is committed as sent
        self.done = False


class Ledger:
    """One SQLite file of students and requests; every method is thread-safe.

    `recover()` must run once after opening (the gateway does it before serving).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}  # student -> micro-dollars held for queued requests
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute("PRAGMA journal_mode = WAL").fetchall()
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, sql_and_args: list[tuple[str, tuple[Any, ...]]]) -> list[sqlite3.Cursor]:
        """Run statements in one IMMEDIATE transaction (caller holds the lock)."""
        cursors = []
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in sql_and_args:
                cursors.append(self._conn.execute(sql, args))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return cursors

    # -- students -----------------------------------------------------------------------------

    def add_student(self, name: str, token: str, budget_micro: int) -> None:
        """Add a student with the hash of `token`. Raises LedgerError if the name exists."""
        with self._lock:
            try:
                self._write(
                    [
                        (
                            "INSERT INTO students (name, token_hash, budget_micro, created) "
                            "VALUES (?, ?, ?, ?)",
                            (name, hash_token(token), budget_micro, now_iso()),
                        )
                    ]
                )
            except sqlite3.IntegrityError:
                raise LedgerError(f"there is already a student called {name!r}") from None

    def names(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM students ORDER BY name")]

    def student_for_token(self, token: str) -> Student | None:
        """The student whose token this is, compared in constant time; None if unknown."""
        digest = hash_token(token)
        with self._lock:
            row = self._conn.execute(
                "SELECT name, budget_micro, spent_micro, reserved_micro, revoked, token_hash "
                "FROM students WHERE token_hash = ?",
                (digest,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[5], digest):
            return None
        return Student(row[0], row[1], row[2], row[3], bool(row[4]))

    def student(self, name: str) -> Student:
        """Raises LedgerError for an unknown name."""
        with self._lock:
            row = self._conn.execute(
                "SELECT name, budget_micro, spent_micro, reserved_micro, revoked "
                "FROM students WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            raise LedgerError(f"no student called {name!r}")
        return Student(row[0], row[1], row[2], row[3], bool(row[4]))

    def set_budget(self, name: str, budget_micro: int) -> None:
        with self._lock:
            (cursor,) = self._write(
                [("UPDATE students SET budget_micro = ? WHERE name = ?", (budget_micro, name))]
            )
        if cursor.rowcount == 0:
            raise LedgerError(f"no student called {name!r}")

    def revoke(self, name: str) -> None:
        with self._lock:
            (cursor,) = self._write([("UPDATE students SET revoked = 1 WHERE name = ?", (name,))])
        if cursor.rowcount == 0:
            raise LedgerError(f"no student called {name!r}")

    def status(self) -> list[dict[str, Any]]:
        """One dict per student: name, budget_usd, spent_usd, images, errors, last_seen."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.name, s.budget_micro, s.spent_micro, s.reserved_micro, s.revoked, "
                "s.last_seen, "
                "(SELECT COUNT(*) FROM requests r WHERE r.student = s.name "
                " AND r.http_status BETWEEN 200 AND 299), "
                "(SELECT COUNT(*) FROM requests r WHERE r.student = s.name "
                " AND (r.http_status >= 400 OR r.status = 'recovered')) "
                "FROM students s ORDER BY s.name"
            ).fetchall()
            held = dict(self._held)
        return [
            {
                "name": name,
                "budget_usd": to_usd(budget),
                "spent_usd": to_usd(spent),
                "reserved_usd": to_usd(reserved + held.get(name, 0)),
                "images": images,
                "errors": errors,
                "last_seen": last_seen,
                "revoked": bool(revoked),
            }
            for name, budget, spent, reserved, revoked, last_seen, images, errors in rows
        ]

    # -- money --------------------------------------------------------------------------------

    def hold(self, name: str, estimate_micro: int) -> Hold | Refusal:
        """Set `estimate_micro` aside for a queued request, or say why the budget forbids it."""
        with self._lock:
            row = self._conn.execute(
                "SELECT budget_micro, spent_micro, reserved_micro FROM students WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None:
                raise LedgerError(f"no student called {name!r}")
            budget, spent, reserved = row
            committed = spent + reserved + self._held.get(name, 0)
            if committed + estimate_micro > budget:
                return Refusal(budget, committed, estimate_micro)
            self._held[name] = self._held.get(name, 0) + estimate_micro
        return Hold(name, estimate_micro)

    def drop(self, hold: Hold) -> None:
        """Give back a hold whose request was never sent (a no-op once sent or done)."""
        with self._lock:
            if hold.done or hold.row_id is not None:
                return
            hold.done = True
            self._unhold_locked(hold)

    def _unhold_locked(self, hold: Hold) -> None:
        left = self._held.get(hold.student, 0) - hold.estimate_micro
        if left > 0:
            self._held[hold.student] = left
        else:
            self._held.pop(hold.student, None)

    def mark_sent(self, hold: Hold, params: dict[str, Any]) -> int:
        """Commit the request as sent, its estimate reserved: done just before forwarding."""
        stamp = now_iso()
        text = json.dumps(params, ensure_ascii=False, sort_keys=True)
        with self._lock:
            insert, _ = self._write(
                [
                    (
                        "INSERT INTO requests (student, time, params, status, reserved_micro) "
                        "VALUES (?, ?, ?, 'sent', ?)",
                        (hold.student, stamp, text, hold.estimate_micro),
                    ),
                    (
                        "UPDATE students SET reserved_micro = reserved_micro + ?, last_seen = ? "
                        "WHERE name = ?",
                        (hold.estimate_micro, stamp, hold.student),
                    ),
                ]
            )
            self._unhold_locked(hold)
            hold.row_id = insert.lastrowid
        assert hold.row_id is not None
        return hold.row_id

    def finish(self, hold: Hold, *, http_status: int | None, cost_micro: int | None) -> None:
        """Settle a sent request at `cost_micro`, or release it (None: nothing was charged)."""
        assert hold.row_id is not None, "finish() is for requests marked sent"
        status = "released" if cost_micro is None else "charged"
        cost = cost_micro or 0
        with self._lock:
            if hold.done:
                return
            hold.done = True
            self._write(
                [
                    (
                        "UPDATE requests SET status = ?, http_status = ?, cost_micro = ?, "
                        "finished = ? WHERE id = ?",
                        (status, http_status, cost, now_iso(), hold.row_id),
                    ),
                    (
                        "UPDATE students SET reserved_micro = reserved_micro - ?, "
                        "spent_micro = spent_micro + ? WHERE name = ?",
                        (hold.estimate_micro, cost, hold.student),
                    ),
                ]
            )

    def note_refusal(self, name: str, params: dict[str, Any], http_status: int) -> None:
        """Record a request refused before it was sent (budget, bad body): no money moves."""
        stamp = now_iso()
        text = json.dumps(params, ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._write(
                [
                    (
                        "INSERT INTO requests (student, time, params, status, http_status, "
                        "reserved_micro, finished) VALUES (?, ?, ?, 'released', ?, 0, ?)",
                        (name, stamp, text, http_status, stamp),
                    ),
                    ("UPDATE students SET last_seen = ? WHERE name = ?", (stamp, name)),
                ]
            )

    def set_image(self, row_id: int, image_file: str) -> None:
        with self._lock:
            self._write([("UPDATE requests SET image_file = ? WHERE id = ?", (image_file, row_id))])

    def recover(self) -> int:
        """Settle every request left 'sent' by a crash at its estimate; returns how many.

        The service may have made (and charged for) the image: the teacher is never
        under-charged, and the estimate was within the student's budget when it was reserved.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                open_rows = self._conn.execute(
                    "SELECT id, student, reserved_micro FROM requests WHERE status = 'sent'"
                ).fetchall()
                for row_id, student, reserved in open_rows:
                    self._conn.execute(
                        "UPDATE requests SET status = 'recovered', cost_micro = ?, finished = ? "
                        "WHERE id = ?",
                        (reserved, now_iso(), row_id),
                    )
                    self._conn.execute(
                        "UPDATE students SET spent_micro = spent_micro + ? WHERE name = ?",
                        (reserved, student),
                    )
                # Nothing is in flight now: the reserved column starts again from zero.
                self._conn.execute("UPDATE students SET reserved_micro = 0")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(open_rows)

    # -- what the teacher reads -----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._write([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))])

    def gallery(self, limit: int) -> list[dict[str, Any]]:
        """The latest images the gateway passed on: id, name, prompt, time, image_file."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, student, params, time, image_file FROM requests "
                "WHERE image_file IS NOT NULL ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        out = []
        for row_id, student, params, stamp, image_file in rows:
            try:
                prompt = str(json.loads(params).get("prompt", ""))
            except (ValueError, AttributeError):
                prompt = ""
            out.append(
                {"id": row_id, "name": student, "prompt": prompt, "time": stamp,
                 "image_file": image_file}
            )  # fmt: skip
        return out

    def image_file(self, row_id: int) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT image_file FROM requests WHERE id = ?", (row_id,)
            ).fetchone()
        return None if row is None else row[0]

    def totals(self) -> dict[str, int]:
        """Per student, micro-dollars charged, summed from the request rows (for audits)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT student, SUM(cost_micro) FROM requests GROUP BY student"
            ).fetchall()
        return {name: int(total or 0) for name, total in rows}
