"""A class folder on a disk that fills up over a term: the gallery stops first, the ledger
refuses (503, nothing sent or charged) rather than forwarding what it cannot record, and
everything works again, with the books right, once space is freed.

Real small filesystems (tmpfs), so root only, as in CI; skipped with the reason elsewhere.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from mai_image_nb.classroom import Classroom, journal
from mai_image_nb.classroom.gallery import Gallery
from mai_image_nb.offline import OfflineServer
from tests.disks import CAN_MOUNT, fill_up, tmpfs

from .conftest import PRICE, TEACHER_KEY, get, post

pytestmark = pytest.mark.skipif(
    not CAN_MOUNT, reason="needs root and mount: a real small filesystem to fill (tmpfs)"
)


def _state(room: Classroom) -> dict[str, object]:
    answer = get(room.url, "/classroom/state", room.admin_token)
    assert answer.status_code == 200
    state: dict[str, object] = answer.json()
    return state


def _row_statuses(folder: Path) -> list[str]:
    with closing(sqlite3.connect(folder / "ledger.sqlite3")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [status for (status,) in conn.execute("SELECT status FROM requests ORDER BY id")]


def test_a_full_disk_refuses_before_upstream_and_recovers(
    upstream: OfflineServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first answer's settlement is still queued (nobody waits for it) when the disk
    # fills: the failed commit must keep it for later, not drop it.
    monkeypatch.setattr(journal, "FLUSH_DELAY_S", 60.0)
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        folder = mnt / "class"
        with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as room:
            token = room.add_students(["ada"])["ada"]
            assert post(room.url, token, {"prompt": "before"}).status_code == 200
            room.gateway.gallery.wait_idle()
            fill_up(mnt / "filler")
            sent = upstream.post_count

            for prompt in ("on a full disk", "again"):
                answer = post(room.url, token, {"prompt": prompt})
                assert answer.status_code == 503, answer.text
                assert "nothing was sent or charged" in answer.json()["message"]
            assert upstream.post_count == sent  # never forwarded what it could not record
            assert _state(room)["ledger_ok"] is False  # the teacher's dashboard says so
            (row,) = room.status()
            assert row["spent_usd"] == pytest.approx(PRICE) and row["reserved_usd"] == 0

            (mnt / "filler").unlink()
            assert post(room.url, token, {"prompt": "after"}).status_code == 200
            assert _state(room)["ledger_ok"] is True
            assert room.status()[0]["spent_usd"] == pytest.approx(2 * PRICE)
        # Both answers are settled in the file (none left to recovery), and a restart agrees.
        assert _row_statuses(folder) == ["charged", "charged"]
        with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as room:
            assert room.status()[0]["spent_usd"] == pytest.approx(2 * PRICE)
            assert room.status()[0]["images"] == 2


def test_the_gallery_stops_keeping_images_before_the_disk_is_full(
    upstream: OfflineServer, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        folder = mnt / "class"
        with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as room:
            token = room.add_students(["ada"])["ada"]
            gallery: Gallery = room.gateway.gallery
            # Leave less free space than the gallery's reserve (a tenth of this 4 MiB disk).
            filler = mnt / "filler"
            fill_up(filler)
            with filler.open("r+b") as f:
                f.truncate(max(0, filler.stat().st_size - 256 * 1024))

            answer = post(room.url, token, {"prompt": "kept in the books only"})
            assert answer.status_code == 200  # the ledger still has room
            gallery.wait_idle()
            assert gallery.paused and _state(room)["gallery_paused"] is True
            assert list((folder / "gallery").iterdir()) == []

            filler.unlink()
            assert post(room.url, token, {"prompt": "kept again"}).status_code == 200
            gallery.wait_idle()
            assert not gallery.paused
            assert len(list((folder / "gallery").iterdir())) == 1
            assert room.status()[0]["images"] == 2


def test_a_wal_growth_the_disk_cannot_hold_leaves_the_books_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The free-space check is passed (as if another writer filled the disk meanwhile): the
    # growth stops part-way at a full disk, and the ledger still commits into what it grew.
    monkeypatch.setattr(journal, "WAL_FREE_FACTOR", 0)
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        path = mnt / "j.db"
        book = journal.Journal(path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
        try:
            # Grown until the disk was full: part of the way.
            assert 1024 * 1024 < (mnt / "j.db-wal").stat().st_size < journal.WAL_FRAMES * 4096
            book.start()
            for x in range(20):
                book.write([("INSERT INTO t VALUES (?)", (x,))])  # waited: on disk
        finally:
            book.close()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (20,)
