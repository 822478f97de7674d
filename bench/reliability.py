"""Reliability figures: chaos soak, SIGKILL crash cycles, readers and writers, hostile inputs.

The measuring code lives with the tests that assert on it (tests/reliability, and
tests/unit/test_history_crash.py for the crash cycles); this module runs it longer and turns
what it measures into rows. For counts the baseline is the expected value, so a figure of
1.00x means "as it must be", and the counts themselves are in the note.
"""

from __future__ import annotations

import functools
import io
import statistics
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from PIL import Image

import tests.unit.test_history_crash as crash
from bench.harness import Row, interleave
from mai_image_nb.errors import ValidationError
from mai_image_nb.imagemeta import read_params
from mai_image_nb.offline import OfflineServer
from mai_image_nb.offline.faults import bomb_png
from mai_image_nb.pngmeta import embed_params
from tests.reliability.hostile import (
    MIB,
    READ_PARAMS_CASE_NAMES,
    ClientCase,
    client_cases,
    read_params_cases,
)
from tests.reliability.test_chaos import run_soak
from tests.reliability.test_hostile_inputs import (
    CLIENT_PEAK_BYTES,
    QUICK_S,
    READ_PARAMS_PEAK_BYTES,
    run_probe,
)
from tests.reliability.test_readers_writers import run_readers_writers
from tests.unit.crash_writer import make_generation

SOAK_ITEMS = {True: 125, False: 250}  # per batch, 4 batches: quick / full
CRASH_CYCLES = {True: 30, False: 200}
RW_SECONDS = {True: 5.0, False: 30.0}
HOSTILE_ROUNDS = {True: 1, False: 3}
READ_PARAMS_ROUNDS = {True: 3, False: 10}


def run(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="mai-reliability-") as tmp:
        root = Path(tmp)
        return [
            *chaos_soak(root / "soak", quick),
            *crash_cycles(root / "crash", quick),
            *readers_and_writers(root / "rw", quick),
            *hostile_answers(quick),
            *hostile_files(root / "files", quick),
        ]


def _count(name: str, got: float, expected: float, note: str, *, unit: str = "") -> Row:
    return Row(name, [got], "expected", [expected], unit=unit, goal="= expected",
               ok=got == expected, note=note)  # fmt: skip


# -- chaos soak ------------------------------------------------------------------------------------


def chaos_soak(home: Path, quick: bool) -> list[Row]:
    stats = run_soak(home, items=SOAK_ITEMS[quick])
    typed = stats.calls - len(stats.untyped)
    outcomes = ", ".join(f"{name} {n}" for name, n in stats.outcomes.most_common())
    item_ms = [s * 1000 for s in stats.item_s]
    leftovers = len(stats.sockets_after_close) + len(stats.new_fds) + len(stats.new_threads)
    return [
        _count(
            "chaos soak: calls ending in a Generation or typed error",
            typed,
            stats.calls,
            f"{stats.calls} calls, {stats.posts} POSTs in {stats.seconds:.1f} s; {outcomes}",
        ),
        Row(
            "chaos soak: slowest call",
            [max(item_ms)],
            "its bound: 2×(attempts×timeout + back-off) + 1 s",
            [stats.item_bound_s * 1000],
            goal="≤ bound",
            ok=max(stats.item_s) <= stats.item_bound_s,
            note=f"median {statistics.median(item_ms):.0f} ms, "
            f"p99 {_quantile(item_ms, 0.99):.0f} ms",
        ),
        Row(
            "chaos soak: slowest batch",
            [max(stats.batch_s) * 1000],
            "its bound: items per worker × call bound",
            [stats.batch_bound_s * 1000],
            goal="≤ bound",
            ok=max(stats.batch_s) <= stats.batch_bound_s,
            note=f"{len(stats.batch_s)} concurrent batches of {stats.calls // len(stats.batch_s)}",
        ),
        Row(
            "chaos soak: client spent_usd",
            [stats.spent_usd],
            "server-reported sum + estimate × unpriced 2xx",
            [stats.reported_usd + stats.unpriced * stats.estimate_usd],
            unit="USD",
            goal="equal",
            ok=abs(stats.spent_usd - stats.reported_usd - stats.unpriced * stats.estimate_usd)
            < 1e-9,
            note=f"reported {stats.reported_usd:.4f}; {stats.unpriced} answers without a "
            f"readable cost at {stats.estimate_usd:.4f}",
        ),
        _count(
            "chaos soak: open descriptors after close()",
            stats.fds_after,
            stats.fds_before,
            f"before {stats.fds_before}, after {stats.fds_after}; "
            f"client sockets still open {len(stats.sockets_after_close)}",
        ),
        _count(
            "chaos soak: threads after close()",
            stats.threads_after,
            stats.threads_before,
            f"before {stats.threads_before}, after {stats.threads_after}; leftovers {leftovers}",
        ),
        _count(
            "chaos soak: history rows",
            stats.history_rows,
            stats.generations,
            f"integrity_check {stats.integrity}; temporary files {stats.stray_temp_files}",
        ),
    ]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- crash cycles ----------------------------------------------------------------------------------


def crash_cycles(folder: Path, quick: bool) -> list[Row]:
    """`run_crash_cycles`: every figure below is counted from outside the history.

    Confirmed ids come from the killed child over its stdout pipe (printed after add()
    returned); images are the files found on disk right after each kill; both are looked up
    again after reopening the folder as a user would.
    """
    cycles = CRASH_CYCLES[quick]
    failure = ""
    try:
        stats = crash.run_crash_cycles(folder, cycles)
    except AssertionError as exc:  # integrity, a temporary file left, a half image
        failure = f"failed: {exc}"
        stats = crash.CrashStats()
    lost_images = sum(1 for name in stats.lost_names if name.startswith("image "))
    lost_ids = stats.lost - lost_images
    delays = stats.kill_delays_s or [0.0]
    note = failure or (
        f"{stats.cycles} cycles in {stats.seconds:.0f} s; {stats.confirmed} ids confirmed by "
        f"the children before their kill, {lost_ids} missing after reopening; "
        f"{stats.records} records at the end; kill delays "
        f"{min(delays) * 1000:.1f}–{max(delays) * 1000:.1f} ms after the first confirmed id"
    )
    return [
        Row("SIGKILL cycles: confirmed records kept", [stats.confirmed - lost_ids],
            "confirmed", [max(1, stats.confirmed)], unit="", goal="= confirmed",
            ok=not failure and lost_ids == 0 and stats.confirmed > 0, note=note),
        _count("SIGKILL cycles: images on disk after a kill, listed after reopening",
               stats.images_seen - lost_images, stats.images_seen,
               f"summed over cycles; {stats.adopted} had no row after the kill and were "
               f"adopted; {lost_images} lost"),
        _count("SIGKILL cycles completed (integrity_check ok, no temp file left, images whole)",
               stats.cycles, cycles,
               f"{stats.temps_after_kill} temporary files found after kills, all removed by "
               "the next open"),
    ]  # fmt: skip


# -- readers and writers ---------------------------------------------------------------------------


def readers_and_writers(folder: Path, quick: bool) -> list[Row]:
    seconds = RW_SECONDS[quick]
    stats = run_readers_writers(folder, seconds)
    total = sum(stats.reader_ops)
    return [
        _count(
            "1 writer + 4 reader processes: reader operations without error",
            total - stats.reader_errors,
            total,
            f"{seconds:g} s; reader errors {stats.reader_errors}; operations per reader "
            f"{stats.reader_ops}; {stats.written} records written; slowest open "
            f"{stats.slowest_open_s:.2f} s (waits for the writer's lock)",
        )
    ]


# -- hostile inputs --------------------------------------------------------------------------------


def hostile_answers(quick: bool) -> list[Row]:
    """Each hostile answer vs a normal one, as a client in a probe process (time and memory)."""
    cases = client_cases()
    runs = []
    with OfflineServer(image_scale=1 / 16, response_format="b64_json") as server:
        for _ in range(HOSTILE_ROUNDS[quick]):
            server.script(*(case.fault for case in cases))
            runs.append(run_probe(server.url, len(cases) + 1))
    normal_ms = [r[-1]["seconds"] * 1000 for r in runs]
    normal_mib = [r[-1]["traced_peak_bytes"] / MIB for r in runs]
    rows = []
    for index, case in enumerate(cases):
        results = [r[index] for r in runs]
        ms = [r["seconds"] * 1000 for r in results]
        mib = [r["traced_peak_bytes"] / MIB for r in results]
        rss = [r["rss_peak_growth_kib"] for r in results if r["rss_peak_growth_kib"] is not None]
        limit = CLIENT_PEAK_BYTES
        typed = all(r["outcome"] == case.expect for r in results)
        rss_mib = max(rss, default=0) / 1024
        rows.append(
            Row(
                f"hostile answer {case.name}: time to {case.expect}",
                ms,
                "normal answer",
                normal_ms,
                goal=f"< {QUICK_S:g} s",
                ok=typed and max(ms) < QUICK_S * 1000,
                note=f"{results[0]['outcome']}: {results[0]['message'][:90]}",
            )
        )
        rows.append(
            Row(
                f"hostile answer {case.name}: client peak memory",
                mib,
                "normal answer",
                normal_mib,
                unit="MiB",
                goal=f"< {limit / MIB:.0f} MiB",
                ok=max(mib) < limit / MIB,
                note=f"tracemalloc peak; RSS high-water growth {rss_mib:.1f} MiB; "
                f"answer body {_body_mib(case):.2f} MiB",
            )
        )
    return rows


def _body_mib(case: ClientCase) -> float:
    """Bytes the client receives for `case` (the answer, or the image its URL serves)."""
    fault = case.fault
    if fault.name == "body":
        return len(fault.raw) / MIB
    if fault.name == "oversized":
        return fault.n_bytes / MIB
    return len(bomb_png(fault.width, fault.height)) * 4 / 3 / MIB  # base64 of the bomb PNG


def _refuse(source: bytes | Path) -> None:
    try:
        read_params(source)
    except ValidationError:
        return
    raise AssertionError("read_params accepted a hostile file")


def _peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / MIB
    finally:
        tracemalloc.stop()


def hostile_files(folder: Path, quick: bool) -> list[Row]:
    """Each hostile file given to read_params vs reading a PNG this toolkit wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = read_params_cases(folder)
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(out, format="PNG")
    good = embed_params(out.getvalue(), make_generation("bench", "a lighthouse").to_dict())
    rows = []
    for name in READ_PARAMS_CASE_NAMES:
        source = sources[name]
        refuse = functools.partial(_refuse, source)
        timings = interleave(
            {name: refuse, "ours": functools.partial(read_params, good)},
            rounds=READ_PARAMS_ROUNDS[quick],
            warmup=1,
        )
        peak = _peak_mib(refuse)
        baseline_peak = _peak_mib(functools.partial(read_params, good))
        rows += [
            Row(f"read_params({name}): time to ValidationError", timings[name],
                "read_params of our PNG", timings["ours"], goal=f"< {QUICK_S:g} s",
                ok=max(timings[name]) < QUICK_S * 1000),
            Row(f"read_params({name}): peak memory", [peak], "read_params of our PNG",
                [max(baseline_peak, 1 / 1024)], unit="MiB",
                goal=f"< {READ_PARAMS_PEAK_BYTES / MIB:.0f} MiB",
                ok=peak < READ_PARAMS_PEAK_BYTES / MIB, note="tracemalloc peak"),
        ]  # fmt: skip
    return rows
