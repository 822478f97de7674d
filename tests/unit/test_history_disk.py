"""The images folder is the source of truth: rebuilds, migration, folders that cannot be written.

Everything goes through real files; the client tests through the simulator on loopback HTTP.
Read-only and full disks are real filesystems (a small tmpfs, remounted read-only) when the
test runs as root, as CI does; elsewhere a chmod 0555 folder stands in for read-only, and the
full-disk test is skipped with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb import _records, _sqlite
from mai_image_nb.history import DB_NAME, History
from mai_image_nb.offline import OfflineServer
from tests.disks import CAN_MOUNT, IS_ROOT, fill_up, remount_read_only, tmpfs

from .crash_writer import key_of, make_generation

PROMPTS = ("a red fox in snow", "a lighthouse at dusk", "a bowl of ramen")


def posts(server: OfflineServer) -> int:
    return server.post_count


def fill_with_client(server: OfflineServer, folder: Path) -> dict[str, tuple[str, bytes]]:
    """Three paid generations stored in `folder`: prompt -> (id, image bytes)."""
    with mai.Client(base_url=server.url, history=folder) as client:
        return {p: (g.id, g.data) for p in PROMPTS for g in [client.generate(p)]}


def assert_served_from_cache(
    server: OfflineServer, folder: Path, stored: dict[str, tuple[str, bytes]]
) -> None:
    before = posts(server)
    with mai.Client(base_url=server.url, history=folder) as client:
        for prompt, (gid, data) in stored.items():
            again = client.generate(prompt)
            assert again.cached
            assert (again.id, again.data, again.prompt) == (gid, data, prompt)
    assert posts(server) == before, "a stored image was asked for again"


# -- rebuilds ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "empty", "damaged"])
def test_a_lost_database_is_rebuilt_from_the_images(
    server: OfflineServer, tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "h"
    stored = fill_with_client(server, folder)
    db = folder / DB_NAME
    garbage = b"\x00not a database\xff" * 512
    if damage == "missing":
        db.unlink()
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        db.write_bytes(garbage)
    assert_served_from_cache(server, folder, stored)
    with History(folder) as history:
        assert len(history) == len(PROMPTS)
        assert [g.prompt for g in history] == list(PROMPTS)[::-1]  # newest first, as made
    aside = sorted(folder.glob(f"{DB_NAME}.damaged-*"))
    if damage == "damaged":
        assert len(aside) == 1
        assert re.fullmatch(rf"{re.escape(DB_NAME)}\.damaged-\d{{8}}T\d{{6}}Z", aside[0].name)
        assert aside[0].read_bytes() == garbage
    else:
        assert aside == []


def test_rebuild_on_demand_gives_back_every_record(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        gens = [make_generation(f"g{i}", f"prompt {i}", temperature=i / 4) for i in range(5)]
        for gen in gens:
            history.add(gen, cache_key=key_of(gen))
        before = history.to_records()
        with closing(sqlite3.connect(folder / DB_NAME)) as conn, conn:
            conn.execute("DELETE FROM generations WHERE id IN ('g1', 'g3')")
        assert len(history) == 3
        assert history.rebuild() == 5
        assert history.to_records() == before
        assert history.lookup(key_of(gens[3])) is not None
        assert [g.prompt for g in history.search("prompt 3")] == ["prompt 3"]


def test_rebuild_after_the_file_was_overwritten_while_open_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        for i in range(3):
            gen = make_generation(f"g{i}")
            history.add(gen, cache_key=key_of(gen))
    (folder / DB_NAME).write_bytes(b"garbage" * 1000)
    with History(folder) as history:  # opening already rebuilt it
        (folder / DB_NAME).write_bytes(b"garbage" * 1000)  # and now it is damaged again
        assert history.rebuild() == 3
        assert sorted(g.id for g in history) == ["g0", "g1", "g2"]
    with History(folder) as history:  # whatever the file holds now, the folder gives all back
        assert sorted(g.id for g in history) == ["g0", "g1", "g2"]
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(list(folder.glob(f"{DB_NAME}.damaged-*"))) >= 1


def test_delete_and_clear_remove_image_record_and_thumbnails(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        for gid in ("a", "b", "c"):
            gen = make_generation(gid)
            history.add(gen, cache_key=key_of(gen))
            history.thumbnail(gid)
        history.delete("a")
        assert sorted(p.name for p in (folder / "images").iterdir()) == ["b.png", "c.png"]
        assert sorted(p.name for p in (folder / "records").iterdir()) == [
            "b.png.json",
            "c.png.json",
        ]
        assert sorted(p.name for p in (folder / "thumbs").iterdir()) == ["b.jpg", "c.jpg"]
        history.clear()
    for sub in ("images", "records", "thumbs"):
        assert list((folder / sub).iterdir()) == []
    with History(folder) as history:  # nothing comes back: the files are gone
        assert len(history) == 0


def test_a_folder_from_before_records_is_migrated(tmp_path: Path) -> None:
    """A folder made by the previous version: schema 2, no records/ folder."""
    folder = tmp_path / "h"
    with History(folder) as history:
        for gid in ("old-1", "old-2"):
            gen = make_generation(gid, f"an old {gid}")
            history.add(gen, cache_key=key_of(gen))
    shutil.rmtree(folder / "records")
    with closing(sqlite3.connect(folder / DB_NAME, isolation_level=None)) as conn:
        conn.execute("DROP INDEX generations_file")
        conn.execute("PRAGMA user_version = 2")
    with History(folder) as history:
        assert sorted(g.id for g in history) == ["old-1", "old-2"]
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite.MIGRATIONS)
    assert sorted(p.name for p in (folder / "records").iterdir()) == [
        "old-1.png.json",
        "old-2.png.json",
    ]
    (folder / DB_NAME).unlink()  # the records written by the migration rebuild it
    with History(folder) as history:
        assert {g.id: g.prompt for g in history} == {
            "old-1": "an old old-1",
            "old-2": "an old old-2",
        }


# -- folders that cannot be written --------------------------------------------------------


@contextmanager
def read_only_folder(
    tmp_path: Path,
    server: OfflineServer,
    prepare: Callable[[Path, dict[str, tuple[str, bytes]]], None] | None = None,
) -> Iterator[tuple[Path, dict[str, tuple[str, bytes]]]]:
    """A history folder holding three images (then changed by `prepare`, if given), then
    made read-only for real."""
    if CAN_MOUNT:
        with tmpfs(tmp_path / "mnt", "8m") as mnt:
            folder = mnt / "h"
            stored = fill_with_client(server, folder)
            if prepare is not None:
                prepare(folder, stored)
            remount_read_only(mnt)
            yield folder, stored
        return
    if IS_ROOT:
        pytest.skip("root without mount: chmod cannot make a folder read-only for root")
    folder = tmp_path / "h"
    stored = fill_with_client(server, folder)
    if prepare is not None:
        prepare(folder, stored)
    modes = [(p, p.stat().st_mode) for p in [folder, *folder.iterdir()] if p.is_dir()]
    for path, _ in modes:
        path.chmod(0o555)
    try:
        yield folder, stored
    finally:
        for path, mode in modes:
            path.chmod(mode)


def test_a_read_only_folder_serves_its_images_and_keeps_new_ones_in_memory(
    server: OfflineServer, tmp_path: Path
) -> None:
    with read_only_folder(tmp_path, server) as (folder, stored):
        assert_served_from_cache(server, folder, stored)
        before = posts(server)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mai.Client(base_url=server.url, history=folder) as client:
                assert "read-only" in repr(client.history)
                new = client.generate("a new prompt nobody asked before")
                again = client.generate("a new prompt nobody asked before")
                other = client.generate("another new prompt")
                assert client.cached(new.params) is not None
        assert posts(server) == before + 2  # the repeat was served from memory
        assert again.cached and again.data == new.data
        assert not other.cached
        (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert warning.filename == __file__
        assert str(folder) in str(warning.message)
        with History(folder) as history:
            assert len(history) == len(PROMPTS)  # nothing written


def test_a_read_only_folder_without_its_database_is_indexed_in_memory(
    server: OfflineServer, tmp_path: Path
) -> None:
    def lose_the_database(folder: Path, stored: object) -> None:
        for name in os.listdir(folder):
            if name.startswith(DB_NAME):
                (folder / name).unlink()

    with read_only_folder(tmp_path, server, lose_the_database) as (folder, stored):
        assert_served_from_cache(server, folder, stored)
        assert not (folder / DB_NAME).exists()


def test_a_read_only_folder_lists_images_whose_writer_was_killed_before_their_row(
    server: OfflineServer, tmp_path: Path
) -> None:
    # An image and its record landed, its row did not (the writer killed between them), and
    # the folder became read-only before any open could adopt it.
    def lose_a_row(folder: Path, stored: dict[str, tuple[str, bytes]]) -> None:
        with closing(sqlite3.connect(folder / DB_NAME)) as conn, conn:
            conn.execute("DELETE FROM generations WHERE id = ?", (stored[PROMPTS[1]][0],))

    with read_only_folder(tmp_path, server, lose_a_row) as (folder, stored):
        orphan_id, orphan_data = stored[PROMPTS[1]]
        files_before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        with History(folder) as history:
            assert "read-only" in repr(history)
            assert sorted(g.id for g in history) == sorted(gid for gid, _ in stored.values())
            orphan = history[orphan_id]
            assert orphan.prompt == PROMPTS[1] and orphan.data == orphan_data
            assert [g.id for g in history.search(PROMPTS[1])] == [orphan_id]
        assert_served_from_cache(server, folder, stored)
        assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == files_before


def test_a_full_disk_keeps_new_images_in_memory_with_one_warning(
    server: OfflineServer, tmp_path: Path
) -> None:
    if not CAN_MOUNT:
        pytest.skip("needs root and mount: a real small filesystem to fill (tmpfs size=300k)")
    with tmpfs(tmp_path / "mnt", "300k") as mnt:
        folder = mnt / "h"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mai.Client(base_url=server.url, history=folder) as client:
                stored = client.generate(PROMPTS[0])
                fill_up(mnt / "filler")
                before = posts(server)
                first = client.generate(PROMPTS[1])
                again = client.generate(PROMPTS[1])
                client.generate(PROMPTS[2])
                assert client.generate(PROMPTS[0]).cached
                assert posts(server) == before + 2
                assert again.cached and again.id == first.id and again.data == first.data
        storing = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(storing) == 1, [str(w.message) for w in storing]
        assert storing[0].filename == __file__
        assert str(folder) in str(storing[0].message)
        assert "No space left" in str(storing[0].message)
        (mnt / "filler").unlink()
        with History(folder) as history:
            assert [g.id for g in history] == [stored.id]
            assert not [p for p in (folder / "images").iterdir() if p.name.endswith(".tmp")]


def test_a_warning_from_a_batch_points_at_the_users_line(
    server: OfflineServer, tmp_path: Path
) -> None:
    with read_only_folder(tmp_path, server) as (folder, _):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mai.Client(base_url=server.url, history=folder) as client:
                results = client.generate_many(["batch one", "batch two", "batch three"])
        assert all(isinstance(r, mai.Generation) for r in results)
        (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert warning.filename == __file__


def test_a_folder_that_cannot_be_created_falls_back_to_memory_with_one_warning(
    server: OfflineServer, tmp_path: Path
) -> None:
    if not CAN_MOUNT:
        pytest.skip("needs root and mount: a real read-only filesystem to create the folder in")
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        remount_read_only(mnt)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mai.Client(base_url=server.url, history=mnt / "new") as client:
                assert client.history is None
                first = client.generate(PROMPTS[0])
                again = client.generate(PROMPTS[0])
        assert server.post_count == 1
        assert again.cached and again.data == first.data
        (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert warning.filename == __file__
        assert str(mnt / "new") in str(warning.message)


def test_a_warning_with_no_user_line_names_the_folder_not_the_package(
    server: OfflineServer, tmp_path: Path
) -> None:
    """A worker the package started itself (a panel click): no user frame on any stack."""
    with read_only_folder(tmp_path, server) as (folder, _):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mai.Client(base_url=server.url, history=folder) as client:
                worker = threading.Thread(target=client.generate, args=("from a worker",))
                worker.start()
                worker.join(timeout=30)
                assert not worker.is_alive()
        (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert warning.filename == str(folder)
        assert not warning.filename.startswith(str(Path(mai.__file__).parent))


def test_opening_an_intact_history_reads_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        for i in range(20):
            gen = make_generation(f"g{i}")
            history.add(gen, cache_key=key_of(gen))
    reads: list[str] = []
    real = _records.read_record

    def counting(records: str, name: str) -> object:
        reads.append(name)
        return real(records, name)

    monkeypatch.setattr(_records, "read_record", counting)
    before = {p: p.stat().st_mtime_ns for p in (folder / "records").iterdir()}
    with History(folder) as history:
        assert len(history) == 20
    assert reads == []  # no rebuild work
    assert {p: p.stat().st_mtime_ns for p in (folder / "records").iterdir()} == before
    (folder / DB_NAME).unlink()
    with History(folder) as history:
        assert len(history) == 20
    assert sorted(reads) == sorted(f"g{i}.png.json" for i in range(20))  # the rebuild reads all


@pytest.mark.parametrize(
    ("field", "value"),
    [("aspect_ratio", "banana"), ("width", "8"), ("created", "yesterday"), ("id", "")],
)
def test_a_record_that_is_not_valid_is_not_adopted_and_its_image_is_kept(
    tmp_path: Path, field: str, value: object
) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        for gid in ("good", "bad"):
            gen = make_generation(gid)
            history.add(gen, cache_key=key_of(gen))
    sidecar = folder / "records" / "bad.png.json"
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    sidecar.write_text(json.dumps({**record, field: value}), encoding="utf-8")
    (folder / DB_NAME).unlink()
    with History(folder) as history:
        assert [g.id for g in history] == ["good"]
        assert history["good"].image.size == (48, 48)
    assert (folder / "images" / "bad.png").exists()  # never deleted: only not listed


def test_an_open_during_another_write_serves_now_and_adopts_on_the_next_open(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "h"
    with History(folder) as history:
        for gid in ("kept", "orphan"):
            gen = make_generation(gid)
            history.add(gen, cache_key=key_of(gen))
    with closing(sqlite3.connect(folder / DB_NAME, isolation_level=None)) as other:
        other.execute("DELETE FROM generations WHERE id = 'orphan'")  # killed before its row
        other.execute("BEGIN IMMEDIATE")  # another process is in the middle of a write
        try:
            with History(folder) as history:  # does not wait for it (30 s busy timeout)
                assert [g.id for g in history] == ["kept"]
        finally:
            other.execute("ROLLBACK")
    assert (folder / "images" / "orphan.png").exists()
    with History(folder) as history:
        assert [g.id for g in history] == ["orphan", "kept"]
