"""A history writer killed with SIGKILL loses no record whose add() returned and no image it
wrote (one whose row never committed is adopted), and shows no half image.

`run_crash_cycles` is importable so a benchmark can run more cycles than the suite does.
"""

from __future__ import annotations

import io
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from mai_image_nb.history import DB_NAME, History

from .crash_writer import CRASH_POINTS, image_bytes

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

CRASH_CYCLES = 30  # the suite's count; bench/reliability runs 200 through run_crash_cycles
CRASH_SEED = 20260509
MAX_KILL_DELAY_S = 0.03  # kill somewhere in the next ~20 saves after the first one returned
FIRST_ID_DEADLINE_S = 60.0
EXIT_DEADLINE_S = 30.0
REPO = Path(__file__).resolve().parents[2]


def start_writer(folder: Path, prefix: str, point: str | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.unit.crash_writer", str(folder), prefix]
    return subprocess.Popen(
        [*args, point] if point else args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_first_line(proc: subprocess.Popen[bytes], deadline_s: float) -> bytes:
    """Bytes read from the writer's stdout up to and including its first complete line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + deadline_s
    got = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in got:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the writer printed no id within {deadline_s} s")
            if selector.select(remaining):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("the writer exited before printing an id")
                got += chunk
    return got


def printed_ids(output: bytes) -> list[str]:
    """Ids on complete lines only: a line cut by the kill was never confirmed."""
    lines = output.split(b"\n")
    return [line.decode() for line in lines[:-1] if line]


def finish(proc: subprocess.Popen[bytes], first: bytes) -> tuple[list[str], int, bytes]:
    out, err = proc.communicate(timeout=EXIT_DEADLINE_S)
    return printed_ids(first + out), proc.returncode, err


def image_names(folder: Path) -> set[str]:
    """The complete image files in the folder now (temporary files are not images yet)."""
    return {p.name for p in (folder / "images").iterdir() if not p.name.endswith(".tmp")}


def inspect_folder(
    folder: Path, confirmed: list[str], written: frozenset[str] | set[str] = frozenset()
) -> tuple[int, list[str]]:
    """Open the history as a user would and check it; returns (records, what was lost).

    Lost: a confirmed id (its add() returned) without its record, or an image file that was
    on disk before the reopen and is gone, or not listed, after it. Everything else that can
    go wrong (integrity, temporary files left, an image that does not decode) is asserted.
    """
    with History(folder) as history:
        records = {g.id: g for g in history}
        listed = {Path(r["file"]).name for r in history.to_records()}
        lost = [gid for gid in confirmed if gid not in records]
        lost += [f"image {name}" for name in sorted(written - listed)]
        files = image_names(folder)
        assert not [p for p in (folder / "images").iterdir() if p.name.endswith(".tmp")]
        assert files == listed, "an image without a row (or a row without image)"
        sidecars = {p.name for p in (folder / "records").iterdir()}
        assert sidecars == {f"{name}.json" for name in files}, "a record without its image"
        for gen in records.values():
            with Image.open(io.BytesIO(gen.data)) as image:
                image.load()  # every visible image decodes in full
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return len(records), lost


def check_folder(
    folder: Path, confirmed: list[str], written: frozenset[str] | set[str] = frozenset()
) -> int:
    """`inspect_folder`, asserting nothing was lost; returns the number of records."""
    records, lost = inspect_folder(folder, confirmed, written)
    assert lost == [], f"lost after reopening: {lost}"
    return records


@dataclass
class CrashStats:
    cycles: int = 0
    confirmed: int = 0  # ids the writers printed after add() returned, before their kill
    images_seen: int = 0  # image files on disk right after the kills, summed over cycles
    adopted: int = 0  # images found without a row after a kill, listed after the reopen
    temps_after_kill: int = 0  # temporary files the kills left (each reopen removes them)
    lost: int = 0  # confirmed ids or seen images missing after a reopen
    lost_names: list[str] = field(default_factory=list)
    records: int = 0
    seconds: float = 0.0
    kill_delays_s: list[float] = field(default_factory=list)


def rows_now(folder: Path) -> set[str]:
    """Image files the database lists right now, read without opening a History."""
    with closing(sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)) as conn:
        return {row[0] for row in conn.execute("SELECT file FROM generations")}


def run_crash_cycles(folder: Path, cycles: int, seed: int = CRASH_SEED) -> CrashStats:
    """Start a writer, SIGKILL it at a random moment, check the folder; `cycles` times.

    Each cycle measures what was lost: ids the child reported (over its stdout pipe) after
    add() returned, and image files present after the kill, must all be listed after the
    reopen. Raises AssertionError on an integrity error, a temporary file left or a
    half-written image visible.
    """
    rng = random.Random(seed)
    stats = CrashStats()
    started = time.perf_counter()
    confirmed: list[str] = []
    pause = threading.Event()  # never set: its wait() is a bounded, interruptible delay
    for cycle in range(cycles):
        proc = start_writer(folder, f"c{cycle:04d}")
        try:
            first = wait_for_first_line(proc, FIRST_ID_DEADLINE_S)
            delay_s = rng.uniform(0.0, MAX_KILL_DELAY_S)
            pause.wait(delay_s)
            proc.send_signal(signal.SIGKILL)
            ids, returncode, err = finish(proc, first)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=EXIT_DEADLINE_S)
        assert returncode == -signal.SIGKILL, err.decode(errors="replace")
        confirmed.extend(ids)
        written = image_names(folder)
        stats.images_seen += len(written)
        stats.temps_after_kill += sum(
            1 for sub in ("images", "records") for p in (folder / sub).iterdir()
            if p.name.endswith(".tmp")
        )  # fmt: skip
        stats.adopted += len(written - rows_now(folder))
        stats.records, lost = inspect_folder(folder, confirmed, written)
        stats.lost += len(lost)
        stats.lost_names += lost
        stats.cycles += 1
        stats.kill_delays_s.append(delay_s)
    stats.confirmed = len(confirmed)
    stats.seconds = time.perf_counter() - started
    return stats


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    stats = run_crash_cycles(tmp_path / "h", CRASH_CYCLES)
    assert stats.cycles == CRASH_CYCLES
    assert stats.lost == 0, f"lost after a kill: {stats.lost_names}"
    assert stats.records >= stats.confirmed >= CRASH_CYCLES


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_each_step_of_one_save_is_all_old_or_all_new(tmp_path: Path, point: str) -> None:
    folder = tmp_path / "h"
    proc = start_writer(folder, "p", point)
    try:
        ids, returncode, err = finish(proc, b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=EXIT_DEADLINE_S)
    assert returncode == -signal.SIGKILL, err.decode(errors="replace")
    assert ids == (["p-0", "p-1"] if point == "after_commit" else ["p-0"])
    on_disk = sorted(p.name for p in (folder / "images").iterdir())
    written = image_names(folder)
    if point == "after_temp":  # the killed save left its temporary file
        assert len(on_disk) == 2
        assert [n for n in on_disk if n.endswith(".tmp")]
    if point == "after_rename":  # the image is in place, its row was never committed
        assert on_disk == ["p-0.png", "p-1.png"]
    check_folder(folder, ids, written)
    # old only, or old and new (a paid image whose row never committed is adopted): never half
    listed = ["p-0"] if point == "after_temp" else ["p-0", "p-1"]
    with History(folder) as history:
        assert [g.id for g in history] == listed[::-1]
        assert history["p-0"].data == image_bytes(0)
        if point != "after_temp":
            assert history["p-1"].data == image_bytes(1)
    assert sorted(p.name for p in (folder / "images").iterdir()) == [f"{i}.png" for i in listed]


def test_readers_in_this_process_see_a_writer_process_safely(tmp_path: Path) -> None:
    folder = tmp_path / "h"
    History(folder).close()
    proc = start_writer(folder, "w")
    errors: list[BaseException] = []
    seen = 0
    first = b""
    try:
        first = wait_for_first_line(proc, FIRST_ID_DEADLINE_S)
        with History(folder) as history:
            deadline = time.monotonic() + 30
            while seen < 20 and time.monotonic() < deadline:
                try:
                    gens = history.search(limit=5)
                    for gen in gens:
                        assert gen.data  # a listed record always has its image
                    seen = len(history)
                except BaseException as exc:
                    errors.append(exc)
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        ids, _, _ = finish(proc, first)
    assert errors == []
    assert seen >= 20
    check_folder(folder, ids)
