"""The classroom gateway: overhead per request, a whole class against the ideal, kill -9 cycles.

The simulator and the gateway run as separate processes (as in a class), the students are
threads here. Every figure is set beside a baseline measured in the same run:
- overhead: 50 concurrent students, each request's time through the gateway vs straight to
  the simulator, and through a bare pass-through proxy (the floor of one more hop), the three
  taking turns request by request; goal: median ≤ 2 ms added.
- class: 200 students × 3 requests at 1 s upstream latency, max_inflight 64, against the
  ideal ceil(600 / 64) × 1 s; goal ≤ 1.2×; the ledger must match the simulator to the cent.
- crashes: kill -9 of the gateway mid-load, 20 times; every student charged at least for what
  they received and at most for what was sent.
- commit: the ledger's durable write before each send, with the WAL grown when the journal
  opens (as the gateway does) against a WAL growing as it is written (SQLite's own way),
  the two taking turns at a class's pace.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.harness import Row
from mai_image_nb.classroom import Classroom
from mai_image_nb.classroom.journal import Journal, presize_wal
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import DEFAULT_MODEL
from tests.classroom.gateway_process import (
    MAX_INFLIGHT,
    GatewayProcess,
    load_until_killed,
    read_tokens,
    upstream_busy,
)

KEY = "sk-bench-teacher"
PRICE = 0.0627
GEN = "/v1/images/generations"


class _ServerProcess:
    """A server in its own process (so its threads are not ours); `url` from its first line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = next(word for word in line.split() if word.startswith("http://"))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def _simulator(latency_s: float) -> _ServerProcess:
    """`python -m mai_image_nb.offline` with small b64 answers: the gallery's copy comes with
    the answer, as for the direct baseline (with URL answers the gateway's download would
    load this one process twice)."""
    return _ServerProcess("mai_image_nb.offline", "--port", "0", "--latency", str(latency_s),
                          "--scale", "0.0625", "--seed", "1", "--b64")  # fmt: skip


def _students(folder: Path, n: int) -> Path:
    path = folder / "names.txt"
    path.write_text("".join(f"s{i:03d}\n" for i in range(n)), encoding="utf-8")
    return path


def _run_interleaved(
    arms: dict[str, tuple[str, dict[str, str]]],
    per_student: int,
    spread_s: float,
    *,
    warm_up: bool = False,
) -> dict[str, list[float]]:
    """Each student sends `per_student` requests to every arm in turn; each arm's ms.

    `arms` maps a name to (URL, student name -> bearer token). The arms take turns request by
    request (each student starting at a different one), so every arm meets the machine as it
    is at that moment: a busy second slows all of them alike instead of one arm's round.
    Student k starts k/n of `spread_s` late, as a class does. With `warm_up`, each student
    first sends one untimed request to every arm, so the timed ones measure a class at work
    (connections open, as a student's client keeps them) rather than its first minute.
    """
    names = list(next(iter(arms.values()))[1])
    order = list(arms)
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(names))

    def student(k: int, name: str) -> None:
        sessions = {arm: requests.Session() for arm in arms}
        try:
            start.wait(60)
            threading.Event().wait(spread_s * k / len(names))
            warm = len(order) if warm_up else 0
            for i in range(warm + per_student * len(order)):
                arm = order[(k + i) % len(order)]
                url, tokens = arms[arm]
                body = json.dumps({"model": DEFAULT_MODEL, "prompt": f"{name} {i}"})
                began = time.perf_counter()
                auth = {"Authorization": f"Bearer {tokens[name]}"}
                r = sessions[arm].post(url + GEN, data=body, timeout=120, headers=auth)
                took = (time.perf_counter() - began) * 1000
                with lock:
                    if r.status_code != 200:
                        failures.append(f"{arm}: {r.status_code} {r.text[:200]}")
                    elif i >= warm:
                        times[arm].append(took)
        finally:
            for session in sessions.values():
                session.close()

    threads = [threading.Thread(target=student, args=(k, n)) for k, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive()
    assert not failures, failures[:3]
    assert all(len(v) == len(names) * per_student for v in times.values())
    return times


def _commit_floor_ms(stop: threading.Event, gap_s: float = 0.02) -> list[float]:
    """Fsynced commits at a class's pace (one every `gap_s`) until `stop`: the ledger's
    durable write before each send; each one's ms."""
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("CREATE TABLE t (x INTEGER)")
            presize_wal(conn, Path(tmp) / "floor.db")  # as the gateway's ledger
            times: list[float] = []
            while not stop.wait(gap_s):
                began = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?)", (len(times),))
                conn.execute("COMMIT")
                times.append((time.perf_counter() - began) * 1000)
        finally:
            conn.close()
    return times


class _CommitFloor:
    """`_commit_floor_ms` in its own process (its thread must not wait on the students' GIL)
    for as long as the class runs, so it meets the machine as the gateway does."""

    def __init__(self) -> None:
        code = ("import sys, threading; from bench.bench_classroom import _commit_floor_ms; "
                "stop = threading.Event(); threading.Thread(target=lambda: (sys.stdin.read(), "
                "stop.set()), daemon=True).start(); print(*_commit_floor_ms(stop))")  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip

    def median_ms(self) -> float:
        """Stop it; the median commit's ms."""
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, self.proc.returncode
        return statistics.median(float(word) for word in out.split())


def bench_overhead(quick: bool) -> list[Row]:
    students, per_student, passes = 50, 3 if quick else 5, 1 if quick else 2
    sim = _simulator(latency_s=1.0)
    hop = _ServerProcess("bench.passthrough", sim.url)  # one bare stdlib hop: the floor
    commits = _CommitFloor()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "class"
            names = _students(Path(tmp), students)
            gateway = GatewayProcess(folder, names, sim.url, KEY, "--max-inflight", "64")
            tokens = read_tokens(folder)
            direct_tokens = dict.fromkeys(tokens, KEY)
            arms = {"via": (gateway.url, tokens), "bare": (hop.url, direct_tokens),
                    "direct": (sim.url, direct_tokens)}  # fmt: skip
            via, bare, direct = [], [], []
            try:
                for _ in range(passes):
                    times = _run_interleaved(arms, per_student, 1.0, warm_up=True)
                    via += times["via"]
                    bare += times["bare"]
                    direct += times["direct"]
            finally:
                gateway.stop()
    finally:
        try:
            fsync_ms = commits.median_ms()
        finally:
            hop.close()
            sim.close()
    added = statistics.median(via) - statistics.median(direct)
    hop_ms = statistics.median(bare) - statistics.median(direct)
    return [
        Row(
            "gateway: one request, 50 concurrent students (1 s upstream, arrivals over 1 s)",
            via, "simulator directly", direct, goal="median ≤ +2 ms", ok=added <= 2.0,
            note=f"added per request: median {added:.2f} ms, min {min(via) - min(direct):.2f} "
            f"ms ({len(via)} requests each way). Under it: one bare hop {hop_ms:.2f} ms (next "
            f"row) and one durable SQLite commit (WAL, synchronous FULL) at the class's pace, "
            f"timed apart meanwhile, {fsync_ms:.2f} ms; the gateway's own work is the rest, "
            f"{added - hop_ms - fsync_ms:.2f} ms",
        ),
        Row(
            "floor: a bare pass-through proxy (same stdlib server and client, no ledger)",
            bare, "simulator directly", direct, goal="(the floor under the row above)",
            ok=None, note=f"added per request: median {hop_ms:.2f} ms",
        ),
    ]  # fmt: skip


def bench_overhead_at_once(quick: bool) -> Row:
    """The overhead row's question with 50 requests at the gateway at once (there, taking
    turns with two other arms, about 17 are): 50 students through the gateway and, at the
    same time, the same 50 straight to the simulator, as two groups of threads."""
    students, per_student = 50, 4 if quick else 10
    sim = _simulator(latency_s=1.0)
    times: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "class"
            gateway = GatewayProcess(folder, _students(Path(tmp), students), sim.url, KEY,
                                     "--max-inflight", "64")  # fmt: skip
            tokens = read_tokens(folder)
            groups = {"via": (gateway.url, tokens), "direct": (sim.url, dict.fromkeys(tokens, KEY))}

            def group(arm: str) -> None:
                times[arm] = _run_interleaved({arm: groups[arm]}, per_student, 1.0,
                                              warm_up=True)[arm]  # fmt: skip

            threads = [threading.Thread(target=group, args=(arm,)) for arm in groups]
            try:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(600)
                    assert not thread.is_alive()
            finally:
                gateway.stop()
    finally:
        sim.close()
    assert set(times) == {"via", "direct"}, "a group failed (its error is printed above)"
    added = statistics.median(times["via"]) - statistics.median(times["direct"])
    return Row(
        "gateway: 50 students' requests at it at once (beside 50 straight to the simulator)",
        times["via"], "simulator directly, at the same time", times["direct"],
        goal="(the first row at 3× its load at the gateway)", ok=None,
        note=f"added per request: median {added:.2f} ms ({len(times['via'])} requests each way)",
    )  # fmt: skip


def bench_class(quick: bool) -> Row:
    students = 60 if quick else 200
    per_student, inflight, latency_s = 3, 64, 1.0
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(
        latency_s=latency_s, image_scale=0.0625, api_key=KEY, seed=2
    ) as sim:  # fmt: skip
        folder = Path(tmp) / "class"
        names = _students(Path(tmp), students)
        gateway = GatewayProcess(folder, names, sim.url, KEY, "--max-inflight", str(inflight))
        tokens = read_tokens(folder)
        began = time.perf_counter()
        _run_interleaved({"gateway": (gateway.url, tokens)}, per_student, 0.0)
        wall_s = time.perf_counter() - began
        assert gateway.stop()[0] == 0
        with Classroom(folder, upstream=sim.url, api_key=KEY) as room:
            status = room.status()
        ledger_usd = sum(row["spent_usd"] for row in status)
        exact = round(ledger_usd, 2) == round(sim.reported_usd, 2) and all(
            math.isclose(row["spent_usd"], per_student * PRICE) for row in status
        )
    total = students * per_student
    ideal_s = math.ceil(total / inflight) * latency_s
    ratio = wall_s / ideal_s
    return Row(
        f"gateway: {students} students × {per_student} at 1 s upstream, max_inflight 64",
        [wall_s], "ideal ceil(n/64) × 1 s", [ideal_s], unit="s", goal="≤ 1.2× ideal; "
        "ledger exact to the cent", ok=ratio <= 1.2 and exact,
        note=f"ledger ${ledger_usd:.4f} vs simulator's reported ${sim.reported_usd:.4f}; "
        f"every student ${per_student * PRICE:.4f}: {exact}",
    )  # fmt: skip


def bench_crashes(quick: bool) -> Row:
    cycles = 5 if quick else 20
    with tempfile.TemporaryDirectory() as tmp, OfflineServer(
        latency_s=0.3, image_scale=0.0625, api_key=KEY, seed=3, response_format="b64_json"
    ) as sim:  # fmt: skip
        folder = Path(tmp) / "class"
        names = _students(Path(tmp), 8)
        began = time.perf_counter()
        received, gateway = load_until_killed(
            folder, names, sim.url, KEY, cycles=cycles, posts_between_kills=8,
            upstream_posts=lambda: sim.post_count,
            upstream_full=lambda: upstream_busy(sim, PRICE) >= MAX_INFLIGHT,
        )  # fmt: skip
        wall_s = time.perf_counter() - began
        assert gateway.stop()[0] == 0
        sent: dict[str, int] = {}
        for record in sim.requests:
            if not isinstance(record.json, dict):
                continue  # a request cut short by a kill is not one the service could serve
            name = record.json["prompt"].split(" ")[0]
            sent[name] = sent.get(name, 0) + 1
        with Classroom(folder, upstream=sim.url, api_key=KEY) as room:
            status = room.status()
    bad = [
        row["name"] for row in status
        if not received[row["name"]] * PRICE - 1e-9 <= row["spent_usd"]
        <= sent.get(row["name"], 0) * PRICE + 1e-9
    ]  # fmt: skip
    charged = sum(row["spent_usd"] for row in status) / PRICE
    return Row(
        f"gateway: kill -9 mid-load × {cycles}", [wall_s], "(no baseline: an invariant)",
        [wall_s], unit="s", goal="received ≤ charged ≤ sent, every student", ok=not bad,
        note=f"images received {sum(received.values())}, charged {charged:.0f}, sent "
        f"{sum(sent.values())}; students outside the bounds: {bad or 'none'}",
    )  # fmt: skip


_REQUESTS_TABLE = """
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL, time TEXT NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL,
    reserved_micro INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_student ON requests(student, id);
"""


def bench_commit(quick: bool) -> Row:
    """A request row committed durably (the ledger's write before a send), WAL grown vs not."""
    n, gap_s = (120 if quick else 300), 0.01
    params = json.dumps({"prompt": "a lighthouse at dusk, oil painting", "model": DEFAULT_MODEL})
    times: dict[bool, list[float]] = {True: [], False: []}
    pause = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        journals = {grown: Journal(Path(tmp) / f"{grown}.db", _REQUESTS_TABLE, presize=grown)
                    for grown in (True, False)}  # fmt: skip
        try:
            for journal in journals.values():
                journal.start()
            for i in range(n):
                for grown in (True, False) if i % 2 else (False, True):
                    pause.wait(gap_s)
                    began = time.perf_counter()
                    journals[grown].write([(
                        "INSERT INTO requests (student, time, params, status, reserved_micro) "
                        "VALUES (?, ?, ?, 'sent', ?)", (f"s{i % 50:03d}", time.time(), params, 1),
                    )])  # fmt: skip
                    times[grown].append((time.perf_counter() - began) * 1000)
        finally:
            for journal in journals.values():
                assert journal.close()
    gain = statistics.median(times[False]) - statistics.median(times[True])
    return Row(
        f"ledger commit before a send: WAL grown at open ({n} commits, one per {gap_s * 1000:.0f} "
        "ms)", times[True], "WAL growing as written", times[False], goal="(why the WAL is grown)",
        ok=None, note=f"median {gain:+.3f} ms per commit in the grown WAL's favour",
    )  # fmt: skip


def run(*, quick: bool = False) -> list[Row]:
    return [
        *bench_overhead(quick), bench_overhead_at_once(quick), bench_class(quick),
        bench_crashes(quick), bench_commit(quick),
    ]  # fmt: skip
