"""History: the SQLite store of generations, its files, search, export and concurrency."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from mai_image_nb import _records, _sqlite, previews
from mai_image_nb import history as history_module
from mai_image_nb.errors import MaiImageError, ValidationError
from mai_image_nb.export import RECORD_FIELDS
from mai_image_nb.generation import Usage
from mai_image_nb.history import DB_NAME, History
from mai_image_nb.imagemeta import read_params
from mai_image_nb.params import Params, cache_key
from mai_image_nb.pngmeta import read_record

from .crash_writer import image_bytes, key_of, make_generation

REPO = Path(__file__).resolve().parents[2]
CANARY = "sk-canary-history-7d1e0b9c"
TINY_PNG = image_bytes(0, size=(8, 8))


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "h") as h:
        yield h


def add(h: History, gid: str, prompt: str | None = None, **kwargs: object) -> None:
    gen = make_generation(gid, prompt, **kwargs)  # type: ignore[arg-type]
    h.add(gen, cache_key=key_of(gen))


def integrity(folder: Path) -> str:
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- folder, add, look-up ----------------------------------------------------------------


def test_folder_from_argument_env_or_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAI_IMAGE_HOME", str(tmp_path / "from_env"))
    with History() as h:
        assert h.path == tmp_path / "from_env"
    monkeypatch.delenv("MAI_IMAGE_HOME")
    monkeypatch.chdir(tmp_path)
    with History() as h:
        assert h.path == tmp_path / ".mai_image"
    with History(str(tmp_path / "given")) as h:
        assert h.path == tmp_path / "given"
        assert sorted(p.name for p in h.path.iterdir())[:1] == ["history.sqlite3"]
        assert (h.path / "images").is_dir()
        assert (h.path / "thumbs").is_dir()


def test_add_then_lookup_gives_every_field(history: History) -> None:
    created = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    gen = make_generation(
        "g-1",
        "a red fox",
        aspect_ratio="16:9",
        temperature=0.3,
        max_tokens=50,
        max_completion_tokens=60,
        sample=2,
        created=created,
        usage=Usage(credits_used=3.5, usd_spent=0.07),
    )
    history.add(gen, cache_key="k1")
    found = history.lookup("k1")
    assert found is not None
    assert found.cached is False
    assert found.to_dict() == gen.to_dict()
    assert found.created == created
    assert found.created.tzinfo is not None
    assert found.usage == Usage(credits_used=3.5, usd_spent=0.07)
    assert found.data == gen.data
    assert history.lookup("other") is None


def test_lookup_gives_the_newest_for_a_key(history: History) -> None:
    for gid in ("a", "b", "c"):
        history.add(make_generation(gid), cache_key="same")
    found = history.lookup("same")
    assert found is not None
    assert found.id == "c"


def test_lookup_does_not_read_the_image(history: History) -> None:
    add(history, "lazy")
    (history.path / "images" / "lazy.png").unlink()
    gen = history.lookup(key_of(make_generation("lazy")))
    assert gen is not None  # found without touching the (now missing) file
    assert [g.id for g in history] == ["lazy"]  # listing does not crash either
    with pytest.raises(MaiImageError, match="image of generation 'lazy' is missing"):
        _ = gen.data


def test_lookup_uses_the_index(history: History) -> None:
    with closing(sqlite3.connect(history.path / DB_NAME)) as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM generations WHERE cache_key = ? "
                "ORDER BY seq DESC LIMIT 1",
                ("x",),
            )
        )
    assert "generations_cache_key" in plan


@pytest.mark.parametrize(
    ("fmt", "ext"), [("png", "png"), ("jpeg", "jpg"), ("webp", "webp")], ids=["png", "jpeg", "webp"]
)
def test_bytes_are_stored_exactly_as_received(history: History, fmt: str, ext: str) -> None:
    gen = make_generation("f", image_format=fmt)
    history.add(gen, cache_key="k")
    assert (history.path / "images" / f"f.{ext}").read_bytes() == gen.data
    assert history["f"].data == gen.data
    assert history["f"].image.size == (gen.width, gen.height)


def test_unknown_image_format_is_refused(history: History) -> None:
    gen = make_generation("g")
    gen.image_format = "gif"
    with pytest.raises(ValidationError, match="image_format"):
        history.add(gen, cache_key="k")
    assert len(history) == 0


def test_a_failed_add_leaves_neither_row_nor_image(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(history, "kept")

    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(History, "_insert_row", staticmethod(broken))
    with pytest.raises(MaiImageError, match="disk I/O error"):
        add(history, "lost")
    monkeypatch.undo()
    assert [g.id for g in history] == ["kept"]
    assert sorted(p.name for p in (history.path / "images").iterdir()) == ["kept.png"]
    add(history, "after")  # the writer connection is usable again
    assert [g.id for g in history] == ["after", "kept"]


def test_last_usd_is_the_newest_reported_for_model_and_service(history: History) -> None:
    assert history.last_usd("microsoft/mai-image-2.5", "offline") is None
    add(history, "a", usage=Usage(1.0, 0.05))
    add(history, "b", usage=Usage(1.0, 0.07))
    add(history, "c", usage=None)
    add(history, "d", usage=Usage(1.0, 0.09), service="api.aimlapi.com")
    assert history.last_usd("microsoft/mai-image-2.5", "offline") == 0.07
    assert history.last_usd("microsoft/mai-image-2.5", "api.aimlapi.com") == 0.09
    assert history.last_usd("other/model", "offline") is None


# -- the mapping ---------------------------------------------------------------------------


def test_len_iter_getitem_contains(history: History) -> None:
    for gid in ("one", "two", "three"):
        add(history, gid)
    assert len(history) == 3
    assert [g.id for g in history] == ["three", "two", "one"]
    assert history["two"].id == "two"
    assert "two" in history
    assert "four" not in history
    assert 2 not in history
    with pytest.raises(KeyError, match="four"):
        history["four"]


def test_iteration_pages_through_many_rows(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_module, "PAGE_ROWS", 3)
    for i in range(10):
        add(history, f"g{i}")
    assert [g.id for g in history] == [f"g{i}" for i in reversed(range(10))]


def test_adding_an_id_again_replaces_it_as_newest(history: History) -> None:
    add(history, "a", "first")
    add(history, "b")
    add(history, "a", "second")
    assert [g.id for g in history] == ["a", "b"]
    assert history["a"].prompt == "second"
    assert history.count("first") == 0
    assert history.count("second") == 1


def test_ids_that_are_not_plain_names_are_stored_safely(history: History) -> None:
    hostile = ["../../x", "/etc/passwd", "CON", "a\x00b", "x" * 300, "\u202eevil", "A", "a"]
    for gid in hostile:
        add(history, gid)
    assert sorted(g.id for g in history) == sorted(hostile)
    files = list((history.path / "images").iterdir())
    assert len(files) == len(hostile)
    assert all(len(f.name.encode()) <= 255 for f in files)
    assert {g.data for g in history} == {make_generation(g).data for g in hostile}


def test_repr_shows_folder_and_count(history: History) -> None:
    add(history, "a")
    assert str(history.path) in repr(history)
    assert "1 generation" in repr(history)


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    h = History(tmp_path / "h")
    h.close()
    h.close()
    assert "closed" in repr(h)
    with pytest.raises(MaiImageError, match="closed"):
        len(h)
    with pytest.raises(MaiImageError, match="closed"):
        add(h, "x")


# -- search ------------------------------------------------------------------------------


@pytest.fixture
def searchable(history: History) -> History:
    prompts = [
        "a lighthouse at dusk",
        "sea-side town at night",
        "cats AND dogs",
        "prompt: a robot",
        "100% orange_juice",
        "日本語の灯台",
        'the "quoted" word',
    ]
    for i, prompt in enumerate(prompts):
        add(history, f"s{i}", prompt)
    return history


FTS_HOSTILE = [
    '"',
    '""',
    "'",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR(",
    "*",
    "^",
    "-",
    "(",
    ")",
    "prompt:",
    "prompt:x",
    "a OR",
    "\\",
    "%",
    "_",
    "a\x00b",
    "{}",
    "+",
    ":",
    "a:b",
    "col:*",
    "x AND (",
    "\u202e",
]


@pytest.mark.parametrize("text", FTS_HOSTILE)
@pytest.mark.parametrize("fts", [True, False], ids=["fts", "like"])
def test_search_never_raises_on_hostile_text(searchable: History, text: str, fts: bool) -> None:
    searchable._has_fts = fts
    found = searchable.search(text)
    assert searchable.count(text) == len(found)
    assert all(g.id.startswith("s") for g in found)


@pytest.mark.parametrize("fts", [True, False], ids=["fts", "like"])
def test_search_finds_words_in_prompts(searchable: History, fts: bool) -> None:
    searchable._has_fts = fts

    def ids(text: str) -> list[str]:
        return [g.id for g in searchable.search(text)]

    assert ids("") == [f"s{i}" for i in reversed(range(7))]
    assert ids("lighthouse") == ["s0"]
    assert ids("LIGHT") == ["s0"]
    assert ids("dusk lighthouse") == ["s0"]
    assert ids("at night") == ["s1"]
    if fts:  # words match at their start; LIKE matches anywhere ("cats")
        assert ids("at") == ["s1", "s0"]
    assert ids("AND") == ["s2"]
    assert ids("prompt:") == ["s3"]
    assert ids("sea-side") == ["s1"]
    assert ids("灯台") == ["s5"] if not fts else ids("日本語") == ["s5"]
    assert ids('"quoted"') == ["s6"]
    assert ids("nothing-like-this") == []


def test_like_fallback_treats_wildcards_literally(searchable: History) -> None:
    searchable._has_fts = False
    assert [g.id for g in searchable.search("100%")] == ["s4"]
    assert [g.id for g in searchable.search("e_j")] == ["s4"]
    assert searchable.search("%%%") == []
    assert searchable.search("z_z") == []


def test_search_pages_and_counts(searchable: History) -> None:
    all_ids = [g.id for g in searchable.search()]
    assert [g.id for g in searchable.search(limit=2)] == all_ids[:2]
    assert [g.id for g in searchable.search(limit=2, offset=2)] == all_ids[2:4]
    assert [g.id for g in searchable.search(offset=5)] == all_ids[5:]
    assert searchable.search(limit=0) == []
    assert searchable.count() == 7
    assert searchable.count("lighthouse") == 1
    with pytest.raises(ValidationError):
        searchable.search(limit=-1)
    with pytest.raises(ValidationError):
        searchable.search(offset=-1)


# -- delete, clear ------------------------------------------------------------------------


def test_delete_removes_row_image_and_thumbnails(history: History) -> None:
    add(history, "a")
    add(history, "b")
    history.thumbnail("a")
    history.thumbnail("a", max_px=64)
    history.delete("a")
    assert "a" not in history
    assert history.count("lighthouse") == 1
    assert sorted(p.name for p in (history.path / "images").iterdir()) == ["b.png"]
    assert list((history.path / "thumbs").iterdir()) == []
    with pytest.raises(KeyError, match="'a'"):
        history.delete("a")


def test_clear_removes_everything(history: History) -> None:
    for gid in ("a", "b", "c"):
        add(history, gid)
    history.thumbnail("b")
    history.clear()
    assert len(history) == 0
    assert history.search("lighthouse") == []
    assert list((history.path / "images").iterdir()) == []
    assert list((history.path / "thumbs").iterdir()) == []
    add(history, "d")
    assert [g.id for g in history] == ["d"]


# -- records, money, pandas ----------------------------------------------------------------


def test_total_usd_and_records(history: History) -> None:
    assert history.total_usd == 0.0
    add(history, "a", usage=Usage(1.0, 0.05))
    add(history, "b", usage=None)
    add(history, "c", usage=Usage(2.0, 0.07))
    assert history.total_usd == pytest.approx(0.12)
    records = history.to_records()
    json.dumps(records)  # JSON-safe
    assert [r["id"] for r in records] == ["c", "b", "a"]
    assert all(tuple(r) == RECORD_FIELDS for r in records)
    assert records[1]["usd_spent"] is None
    assert Path(records[0]["file"]).read_bytes() == history["c"].data
    expected = history["a"].to_dict()
    del expected["cached"]
    assert {k: v for k, v in records[2].items() if k != "file"} == expected


def test_records_name_the_file_of_a_replaced_record(history: History) -> None:
    add(history, "a", "first")
    add(history, "a", "second")  # its new image gets another name until the commit
    [record] = history.to_records()
    assert Path(record["file"]).name != "a.png"
    assert Path(record["file"]).read_bytes() == history["a"].data


def test_as_cached_is_the_same_record_marked_cached(history: History) -> None:
    add(history, "a")
    gen = history["a"]
    clone = gen.as_cached()
    assert clone.cached and not gen.cached
    assert clone.to_dict() == gen.to_dict() | {"cached": True}
    assert clone.data == gen.data
    assert clone.image.size == gen.image.size


def test_to_pandas(history: History) -> None:
    add(history, "a")
    add(history, "b")
    frame = history.to_pandas()
    assert list(frame["id"]) == ["b", "a"]
    assert tuple(frame.columns) == RECORD_FIELDS
    assert str(frame["created"].dt.tz) == "UTC"
    history.clear()
    assert tuple(history.to_pandas().columns) == RECORD_FIELDS


def test_to_pandas_without_pandas_names_the_install(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        history.to_pandas()


# -- thumbnails -----------------------------------------------------------------------------


def test_thumbnail_is_made_once_and_kept(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = make_generation("t", data=image_bytes(1, size=(600, 300)))
    history.add(gen, cache_key="k")
    made = 0
    real = previews.preview_bytes

    def counting(image: Image.Image, max_px: int = 512) -> bytes:
        nonlocal made
        made += 1
        return real(image, max_px)

    monkeypatch.setattr(previews, "preview_bytes", counting)
    first = history.thumbnail("t")
    path = history.path / "thumbs" / "t.jpg"
    stat = path.stat()
    second = history.thumbnail("t")
    assert first == second == path.read_bytes()
    assert made == 1
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    with Image.open(io.BytesIO(first)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (256, 128)
    with Image.open(io.BytesIO(history.thumbnail("t", max_px=64))) as small:
        assert small.size == (64, 32)
    assert made == 2
    with pytest.raises(KeyError):
        history.thumbnail("missing")
    with pytest.raises(ValidationError):
        history.thumbnail("t", max_px=0)


# -- export -----------------------------------------------------------------------------


def test_export_writes_pngs_with_params_and_indexes(history: History, tmp_path: Path) -> None:
    add(history, "a", "a red fox", temperature=0.5)
    add(history, "b", "../../etc/passwd", image_format="jpeg")
    add(history, "c", "x" * 300)
    out = history.export(tmp_path / "out")
    assert out == tmp_path / "out"
    records = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in records] == ["c", "b", "a"]
    files = {r["id"]: r["file"] for r in records}
    assert files["a"] == "a-a-red-fox.png"
    assert files["b"] == "b-etc-passwd.png"
    for rec in records:
        path = out / rec["file"]
        assert path.parent == out
        assert len(rec["file"].encode()) <= 255
        assert read_params(path) == history[rec["id"]].params.generate_kwargs()
        assert read_record(path)["id"] == rec["id"]
    with (out / "index.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["id"] for r in rows] == ["c", "b", "a"]
    assert tuple(rows[0]) == RECORD_FIELDS
    expected = sorted([*files.values(), "index.csv", "index.html", "index.json"])
    assert sorted(p.name for p in out.iterdir()) == expected


def test_exporting_twice_never_overwrites(history: History, tmp_path: Path) -> None:
    add(history, "a")
    out = tmp_path / "out"
    history.export(out)
    first = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    history.export(out)
    second = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert {k: second[k] for k in first} == first
    again = "a-a-lighthouse-at-dusk-a-2.png"
    assert sorted(set(second) - set(first)) == [
        again,
        "index-2.csv",
        "index-2.html",
        "index-2.json",
    ]
    assert (
        json.loads((out / "index-2.json").read_text())[0]["file"]
        == "a-a-lighthouse-at-dusk-a-2.png"
    )


def test_export_lists_a_generation_whose_image_is_gone(history: History, tmp_path: Path) -> None:
    add(history, "a")
    add(history, "b")
    (history.path / "images" / "a.png").unlink()
    out = history.export(tmp_path / "out")
    records = {r["id"]: r["file"] for r in json.loads((out / "index.json").read_text())}
    assert records["a"] is None
    assert records["b"]


def test_the_key_never_reaches_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", CANARY)
    with History(tmp_path / "h") as h:
        add(h, "a", "a prompt")
        h.thumbnail("a")
        h.export(tmp_path / "out")
        h.to_records()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


# -- persistence, processes, threads ---------------------------------------------------------


def test_a_new_instance_reads_what_the_old_one_wrote(tmp_path: Path) -> None:
    with History(tmp_path / "h") as h:
        add(h, "a", "first")
        add(h, "b", "second")
    with History(tmp_path / "h") as h:
        assert [g.id for g in h] == ["b", "a"]
        assert h["a"].data == make_generation("a").data
        assert h.count("second") == 1


def test_a_new_process_reads_what_this_one_wrote(tmp_path: Path) -> None:
    with History(tmp_path / "h") as h:
        add(h, "a", "first", temperature=0.25)
        add(h, "b", "second")
    script = (
        "import json, sys\n"
        "from mai_image_nb.history import History\n"
        "with History(sys.argv[1]) as h:\n"
        "    print(json.dumps([[g.id, g.prompt, g.temperature, len(g.data)] for g in h]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "h")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sizes = [len(make_generation(g).data) for g in ("b", "a")]
    expected = [["b", "second", 1.0, sizes[0]], ["a", "first", 0.25, sizes[1]]]
    assert json.loads(done.stdout) == expected


def test_many_threads_add_and_read(tmp_path: Path) -> None:
    threads_n, per_thread = 8, 50
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n + 2)
    stop_reading = threading.Event()
    with History(tmp_path / "h") as h:

        def write(t: int) -> None:
            try:
                start.wait(timeout=30)
                for i in range(per_thread):
                    add(h, f"t{t}-{i}", data=image_bytes(t * 1000 + i, size=(8, 8)))
            except BaseException as exc:
                errors.append(exc)

        def read() -> None:
            try:
                start.wait(timeout=30)
                while not stop_reading.is_set():
                    h.lookup("none")
                    h.search("lighthouse", limit=5)
                    len(h)
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(t,)) for t in range(threads_n)]
        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join(timeout=120)
        stop_reading.set()
        for thread in readers:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in writers + readers)
        assert errors == []
        assert len(h) == threads_n * per_thread
        assert len({g.id for g in h}) == threads_n * per_thread
        assert h.count("lighthouse") == threads_n * per_thread
        assert len(list((h.path / "images").iterdir())) == threads_n * per_thread
    assert integrity(tmp_path / "h") == "ok"


# -- migrations, leftovers, damage ----------------------------------------------------------


def test_migrations_from_an_empty_database(tmp_path: Path) -> None:
    with History(tmp_path / "h"):
        pass
    with closing(sqlite3.connect(tmp_path / "h" / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"generations", "generations_fts", "generations_cache_key"} <= names


def test_migration_from_version_1_indexes_existing_rows(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as h:
        add(h, "a", "an old lighthouse")
    with closing(sqlite3.connect(folder / DB_NAME, isolation_level=None)) as conn:
        conn.execute("DROP TABLE generations_fts")
        for trigger in ("insert", "delete", "update"):
            conn.execute(f"DROP TRIGGER generations_fts_{trigger}")
        conn.execute("PRAGMA user_version = 1")
    with History(folder) as h:
        assert h._has_fts
        assert [g.id for g in h.search("lighthouse")] == ["a"]
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite.MIGRATIONS)


def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    History(folder).close()
    with closing(sqlite3.connect(folder / DB_NAME, isolation_level=None)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(MaiImageError, match="newer"):
        History(folder)


def test_a_damaged_database_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as h:
        add(h, "a", "a red fox")
        add(h, "b", "a blue owl")
    garbage = b"this is not a database" * 100
    (folder / DB_NAME).write_bytes(garbage)
    with History(folder) as h:
        assert [g.id for g in h] == ["b", "a"]
        assert h["a"].prompt == "a red fox"
        assert h["b"].data == make_generation("b").data
    (aside,) = folder.glob(f"{DB_NAME}.damaged-*")
    assert aside.read_bytes() == garbage  # kept, never deleted
    assert integrity(folder) == "ok"


def test_the_damaged_message_no_longer_says_to_move_the_file(tmp_path: Path) -> None:
    damage = sqlite3.DatabaseError("file is not a database")
    error = _sqlite.history_error(tmp_path / DB_NAME, damage)
    assert "rebuild" in str(error)
    assert "move it aside" not in str(error)


def test_leftovers_of_a_killed_writer_are_removed_and_orphans_adopted(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    with History(folder) as h:
        add(h, "kept")
        add(h, "orphan")
        h.thumbnail("kept")
    with closing(sqlite3.connect(folder / DB_NAME)) as conn, conn:
        conn.execute("DELETE FROM generations WHERE id = 'orphan'")  # as if killed before it
    images, thumbs, records = folder / "images", folder / "thumbs", folder / "records"
    (images / ".kept.png.abc123.tmp").write_bytes(b"half")
    (records / ".kept.png.json.abc123.tmp").write_bytes(b"half")
    (records / "never-landed.png.json").write_bytes(b"{}")  # its image was never renamed in
    (images / "unknown.png").write_bytes(image_bytes(3))  # nothing says what it is: kept
    (thumbs / ".kept.jpg.def456.tmp").write_bytes(b"half")
    (thumbs / "gone.jpg").write_bytes(b"x")
    with History(folder) as h:
        assert [g.id for g in h] == ["orphan", "kept"]
        assert h["orphan"].data == make_generation("orphan").data
        assert h["orphan"].prompt == "a lighthouse at dusk orphan"
    assert sorted(p.name for p in images.iterdir()) == ["kept.png", "orphan.png", "unknown.png"]
    assert sorted(p.name for p in records.iterdir()) == ["kept.png.json", "orphan.png.json"]
    assert sorted(p.name for p in thumbs.iterdir()) == ["kept.jpg"]


# -- speed --------------------------------------------------------------------------------


def fill(folder: Path, n: int) -> list[str]:
    """`n` rows written straight into the database (their image files are not needed here)."""
    History(folder).close()
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    keys = []
    rows = []
    for i in range(n):
        params = Params(prompt=f"prompt number {i} of a lighthouse {i % 97}", sample=i % 3)
        key = cache_key(params, "offline")
        keys.append(key)
        gen = make_generation(
            f"g{i:06d}", params.prompt, data=TINY_PNG, sample=params.sample,
            created=base + timedelta(seconds=i), usage=Usage(credits_used=1.0, usd_spent=0.0627),
        )  # fmt: skip
        rows.append(_records.row_of(gen, cache_key=key, file=f"g{i:06d}.png", seq=i + 1))
    columns = ", ".join(_records.COLUMNS)
    names = ", ".join(f":{name}" for name in _records.COLUMNS)
    with closing(sqlite3.connect(folder / DB_NAME)) as conn, conn:
        conn.executemany(f"INSERT INTO generations ({columns}) VALUES ({names})", rows)
    return keys


def test_lookup_and_search_at_10000(tmp_path: Path) -> None:
    """Correct answers at 10,000 rows; their speed is measured in bench/ (bench_studio)."""
    keys = fill(tmp_path / "h", 10_000)
    with History(tmp_path / "h") as h:
        assert len(h) == 10_000
        for key in keys[::100]:
            found = h.lookup(key)
            assert found is not None
            assert cache_key(found.params, found.service) == key
        page = h.search("lighthouse 42", limit=24, offset=24)
        assert h.count("lighthouse") == 10_000
        assert len(page) == 24
        assert all("lighthouse 42" in g.prompt for g in page)


def test_export_csv_keeps_formulas_inert(history: History, tmp_path: Path) -> None:
    add(history, "f", '=HYPERLINK("http://x.invalid","click")')
    add(history, "g", "+1 plain sum")
    out = history.export(tmp_path / "out")
    with (out / "index.csv").open(encoding="utf-8", newline="") as file:
        prompts = {r["id"]: r["prompt"] for r in csv.DictReader(file)}
    assert prompts == {"f": '\'=HYPERLINK("http://x.invalid","click")', "g": "'+1 plain sum"}
    records = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert {r["id"]: r["prompt"] for r in records}["g"] == "+1 plain sum"  # JSON stays exact
