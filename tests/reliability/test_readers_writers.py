"""One writer process and four reader processes on one history folder: no reader ever errs.

The writer is tests/unit/crash_writer.py (adds records as fast as it can, printing each id
once `add()` returned); the readers are tests/reliability/rw_reader.py. `run_readers_writers`
is importable so `bench/reliability` can run it for 30 s; the suite runs it for a few.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mai_image_nb.history import History
from tests.unit.test_history_crash import check_folder, printed_ids
from tests.waits import wait_until

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

REPO = Path(__file__).resolve().parents[2]
SUITE_SECONDS = 3.0
READERS = 4
START_DEADLINE_S = 60.0
EXIT_DEADLINE_S = 60.0


@dataclass
class ReadersWritersStats:
    seconds: float = 0.0
    readers: int = 0
    reader_ops: list[int] = field(default_factory=list)
    reader_errors: int = 0
    error_details: list[str] = field(default_factory=list)
    slowest_open_s: float = 0.0  # the longest a reader waited to open the history
    written: int = 0
    records: int = 0


def run_readers_writers(
    folder: Path, seconds: float, readers: int = READERS
) -> ReadersWritersStats:
    """Run the writer and `readers` reader processes for `seconds`; check the folder after.

    Raises AssertionError when the folder is not sound afterwards (a lost confirmed record,
    an integrity error, a temporary file or a half-written image); reader errors are counted.
    """
    stats = ReadersWritersStats(seconds=seconds, readers=readers)
    History(folder).close()
    out_path = folder.parent / f"{folder.name}-writer.out"
    with out_path.open("wb") as out:
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.crash_writer", str(folder), "rw"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.PIPE,
        )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_until(
            lambda: b"\n" in out_path.read_bytes() or writer.poll() is not None,
            "the writer's first record",
            START_DEADLINE_S,
        )
        assert writer.poll() is None, "the writer exited early"
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.rw_reader", str(folder), str(seconds)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(readers)
        ]
        deadline = time.monotonic() + seconds + EXIT_DEADLINE_S
        for proc in procs:
            report, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, err.decode(errors="replace")
            summary = json.loads(report)
            stats.reader_ops.append(summary["ops"])
            stats.reader_errors += summary["errors"]
            stats.error_details += summary["details"]
            stats.slowest_open_s = max(stats.slowest_open_s, summary["slowest_open_s"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=EXIT_DEADLINE_S)
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)  # it is crash-safe: this is how it always ends
        _, writer_err = writer.communicate(timeout=EXIT_DEADLINE_S)
    assert writer.returncode == -signal.SIGKILL, writer_err.decode(errors="replace")
    confirmed = printed_ids(out_path.read_bytes())
    stats.written = len(confirmed)
    stats.records = check_folder(folder, confirmed)
    return stats


def test_one_writer_and_four_readers_never_see_an_error(tmp_path: Path) -> None:
    stats = run_readers_writers(tmp_path / "h", SUITE_SECONDS)
    assert stats.reader_errors == 0, "\n".join(stats.error_details)
    assert len(stats.reader_ops) == READERS
    assert min(stats.reader_ops) > 10, stats.reader_ops  # each reader really read
    assert stats.written > 10 and stats.records >= stats.written
