"""A history writer killed with SIGKILL loses no record whose add() returned, shows no half image.

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

from .crash_writer import CRASH_POINTS

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


def check_folder(folder: Path, confirmed: list[str]) -> int:
    """Open the history as a user would and check it; returns the number of records."""
    with History(folder) as history:
        records = {g.id: g for g in history}
        lost = [gid for gid in confirmed if gid not in records]
        assert lost == [], f"records whose add() returned were lost: {lost}"
        files = {p.name for p in (folder / "images").iterdir()}
        assert not [name for name in files if name.endswith(".tmp")]
        assert len(files) == len(records), "an image without a row (or a row without image)"
        for gen in records.values():
            with Image.open(io.BytesIO(gen.data)) as image:
                image.load()  # every visible image decodes in full
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return len(records)


@dataclass
class CrashStats:
    cycles: int = 0
    confirmed: int = 0
    lost: int = 0
    records: int = 0
    seconds: float = 0.0
    kill_delays_s: list[float] = field(default_factory=list)


def run_crash_cycles(folder: Path, cycles: int, seed: int = CRASH_SEED) -> CrashStats:
    """Start a writer, SIGKILL it at a random moment, check the folder; `cycles` times.

    Raises AssertionError at the first cycle that loses a confirmed record, leaves an
    integrity error, a temporary file or a half-written image visible.
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
        stats.records = check_folder(folder, confirmed)
        stats.cycles += 1
        stats.kill_delays_s.append(delay_s)
    stats.confirmed = len(confirmed)
    stats.seconds = time.perf_counter() - started
    return stats


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    stats = run_crash_cycles(tmp_path / "h", CRASH_CYCLES)
    assert stats.cycles == CRASH_CYCLES
    assert stats.lost == 0
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
    if point == "after_temp":  # the killed save left its temporary file
        assert len(on_disk) == 2
        assert [n for n in on_disk if n.endswith(".tmp")]
    if point == "after_rename":  # the image is in place, its row was never committed
        assert on_disk == ["p-0.png", "p-1.png"]
    check_folder(folder, ids)
    with History(folder) as history:
        assert [g.id for g in history] == ids[::-1]  # old only, or old and new: never half
    assert sorted(p.name for p in (folder / "images").iterdir()) == [f"{i}.png" for i in ids]


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
