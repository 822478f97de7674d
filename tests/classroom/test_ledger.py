"""The ledger without HTTP: holds, sent rows, recovery at the estimate, group commits."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from mai_image_nb.classroom import journal as journal_module
from mai_image_nb.classroom.files import read_tokens, write_tokens
from mai_image_nb.classroom.journal import BUSY_TIMEOUT_S, Journal, Statement, presize_wal
from mai_image_nb.classroom.ledger import Hold, Ledger, Refusal
from mai_image_nb.classroom.roster import Roster
from mai_image_nb.classroom.terms import LedgerError, hash_token

EST = 62_700  # micro-dollars: the simulator's $0.0627


def test_holds_never_pass_the_budget_and_are_given_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    try:
        ledger.add_student("ada", "tok-ada-xxxxxxxxxxxxxxxxxxxxxxx", 3 * EST)
        holds = [ledger.hold("ada", EST) for _ in range(5)]
        assert [isinstance(h, Hold) for h in holds] == [True] * 3 + [False] * 2
        refusal = holds[3]
        assert isinstance(refusal, Refusal) and refusal.committed_micro == 3 * EST
        first = holds[0]
        assert isinstance(first, Hold)
        ledger.drop(first)
        ledger.drop(first)  # twice is once
        assert isinstance(ledger.hold("ada", EST), Hold)
        with pytest.raises(LedgerError):
            ledger.hold("nobody", EST)
    finally:
        ledger.close()


def test_sent_rows_left_by_a_crash_are_settled_at_the_estimate(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger = Ledger(path)
    ledger.add_student("ada", "tok-ada-xxxxxxxxxxxxxxxxxxxxxxx", 10 * EST)
    done, open_, queued = (ledger.hold("ada", EST) for _ in range(3))
    assert isinstance(done, Hold) and isinstance(open_, Hold) and isinstance(queued, Hold)
    ledger.mark_sent(done, {"prompt": "one"})
    ledger.finish(done, http_status=200, cost_micro=EST - 100)
    ledger.mark_sent(open_, {"prompt": "two"})  # then the process dies: no finish
    ledger.flush()
    ledger.close()  # closing is not settling: the 'sent' row stays open, as after kill -9
    again = Ledger(path)
    try:
        assert again.recovered == 1
        (row,) = again.status()
        assert row["spent_usd"] == (2 * EST - 100) / 1e6  # settled + recovered at the estimate
        assert row["reserved_usd"] == 0  # the queued one held money in memory only
        assert row["images"] == 1 and row["errors"] == 1
        assert row["last_seen"] is not None  # from the rows: settled or recovered
        assert again.totals() == {"ada": 2 * EST - 100}
    finally:
        again.close()


def test_tokens_are_kept_hashed_and_compared_by_digest(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    try:
        ledger.add_student("ada", "tok-ada-xxxxxxxxxxxxxxxxxxxxxxx", EST)
        with pytest.raises(LedgerError):
            ledger.add_student("ada", "another-token-xxxxxxxxxxxxxxxx", EST)
        found = ledger.student_for_token("tok-ada-xxxxxxxxxxxxxxxxxxxxxxx")
        assert found is not None and found.name == "ada"
        assert ledger.student_for_token("tok-ada-xxxxxxxxxxxxxxxxxxxxxxy") is None
    finally:
        ledger.close()
    conn = sqlite3.connect(tmp_path / "l.db")
    try:
        ((stored,),) = conn.execute("SELECT token_hash FROM students").fetchall()
    finally:
        conn.close()
    assert stored == hash_token("tok-ada-xxxxxxxxxxxxxxxxxxxxxxx")


def test_one_failing_write_in_a_group_fails_alone(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", "CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE);")
    journal.start()
    try:
        journal.write([("INSERT INTO t VALUES (1)", ())])
        results: list[object] = []
        start = threading.Barrier(8)

        def write(x: int) -> None:
            start.wait(10)
            try:
                journal.write([("INSERT INTO t VALUES (?)", (x,))])
                results.append(x)
            except sqlite3.IntegrityError:
                results.append("dup")

        threads = [threading.Thread(target=write, args=(x,)) for x in (1, 2, 3, 4, 5, 6, 7, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        assert sorted(map(str, results)) == ["2", "3", "4", "5", "6", "7", "dup", "dup"]
        assert journal.read("SELECT COUNT(*) FROM t") == [(7,)]
    finally:
        assert journal.close()


@pytest.mark.parametrize("grouped", [False, True])
def test_a_failing_write_leaves_nothing_of_itself_and_spares_the_rest(
    tmp_path: Path, grouped: bool
) -> None:
    journal = Journal(tmp_path / "j.db", "CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE);")
    # No writer thread: a waited write commits whatever is queued, its own last.
    try:
        journal.write([("INSERT INTO t VALUES (1)", ())])
        # Its first statement would stand; its second fails: neither may stay.
        bad: list[Statement] = [("INSERT INTO t VALUES (2)", ()), ("INSERT INTO t VALUES (1)", ())]
        if grouped:  # three writes in one commit, the failing one in the middle
            journal.write([("INSERT INTO t VALUES (3)", ())], wait=False)
            failed = journal.write(bad, wait=False)
            journal.write([("INSERT INTO t VALUES (4)", ())])
            assert isinstance(failed.error, sqlite3.IntegrityError)
        else:  # alone in its commit
            with pytest.raises(sqlite3.IntegrityError):
                journal.write(bad)
            journal.write([("INSERT INTO t VALUES (3)", ()), ("INSERT INTO t VALUES (4)", ())])
        assert journal.read("SELECT x FROM t ORDER BY x") == [(1,), (3,), (4,)]
    finally:
        assert journal.close()


def _rows_seen_by_another_connection(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    finally:
        conn.close()


def test_a_waited_write_makes_every_earlier_write_durable(tmp_path: Path) -> None:
    """Unwaited writes (settlements) ride along with the next waited one (a request sent)."""
    path = tmp_path / "j.db"
    journal = Journal(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    journal.start()
    try:
        for x in range(50):
            journal.write([("INSERT INTO t VALUES (?)", (x,))], wait=False)
        journal.write([("INSERT INTO t VALUES (50)", ())])
        assert _rows_seen_by_another_connection(path) == 51
    finally:
        assert journal.close()


def test_the_wal_is_grown_once_to_its_working_size_and_the_data_is_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    wal = tmp_path / "j.db-wal"
    journal = Journal(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    journal.start()
    try:
        grown = wal.stat().st_size
        assert grown >= journal_module.WAL_FRAMES * (4096 + 24)
        journal.write([("INSERT INTO t VALUES (1)", ())])
        with closing(sqlite3.connect(path)) as conn:
            assert presize_wal(conn, path) is False  # already at size: nothing written
            names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
            assert names == {"t"}  # the rolled-back growth left nothing in the database
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert wal.stat().st_size == grown  # commits reuse the grown file
    finally:
        assert journal.close()
    assert _rows_seen_by_another_connection(path) == 1
    assert (tmp_path / "j.db").stat().st_size < 64 * 1024


def test_growing_the_wal_leaves_the_connections_settings_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with closing(journal_module.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        settings = "PRAGMA cache_size", "PRAGMA busy_timeout"
        before = [conn.execute(pragma).fetchone() for pragma in settings]
        assert presize_wal(conn, path) is True
        assert [conn.execute(pragma).fetchone() for pragma in settings] == before
        assert not conn.in_transaction


def test_the_wal_is_not_grown_while_another_connection_writes(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with closing(journal_module.connect(path)) as other:
        other.execute("CREATE TABLE t (x INTEGER)")
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        began = time.monotonic()
        journal = Journal(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
        took = time.monotonic() - began
        other.execute("ROLLBACK")
    try:
        assert took < BUSY_TIMEOUT_S / 2  # it did not wait out the lock for an optimisation
        assert (tmp_path / "j.db-wal").stat().st_size < 64 * 1024
        journal.start()
        journal.write([("INSERT INTO t VALUES (1)", ())])  # and it writes as usual
    finally:
        assert journal.close()


def test_the_wal_is_not_grown_where_the_disk_is_short_of_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "WAL_FREE_FACTOR", 2**40)  # no disk has that much
    journal = Journal(tmp_path / "j.db", "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    try:
        assert (tmp_path / "j.db-wal").stat().st_size < 64 * 1024
    finally:
        assert journal.close()


def test_unwaited_writes_are_committed_by_the_writer_and_on_close(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    journal.start()
    try:
        journal.write([("INSERT INTO t VALUES (1)", ())], wait=False)
        job = journal.write([("INSERT INTO t VALUES (2)", ())], wait=False)
        assert job.done.wait(10)  # the writer thread commits it without anyone waiting
        assert _rows_seen_by_another_connection(path) == 2
        journal.write([("INSERT INTO t VALUES (3)", ())], wait=False)
    finally:
        assert journal.close()  # commits what is queued, and its thread ended
    assert _rows_seen_by_another_connection(path) == 3


def test_roster_adds_tokens_csv_rows_the_ledger_missed(tmp_path: Path) -> None:
    write_tokens(tmp_path, {"ada": "tok-ada-xxxxxxxxxxxxxxxxxxxxxxx"})  # a crash before the ledger
    ledger = Ledger(tmp_path / "l.db")
    try:
        roster = Roster(tmp_path, ledger)
        roster.reconcile(EST)
        assert ledger.student_for_token("tok-ada-xxxxxxxxxxxxxxxxxxxxxxx") is not None
        made = roster.add(["ada", "bob", "bob"], EST)
        assert list(made) == ["bob"]
        assert read_tokens(tmp_path) == {"ada": "tok-ada-xxxxxxxxxxxxxxxxxxxxxxx", **made}
        for bad in ("", "a,b", "x" * 65, "tab\there", 'quote"'):
            with pytest.raises(LedgerError):
                roster.add([bad], EST)
    finally:
        ledger.close()
