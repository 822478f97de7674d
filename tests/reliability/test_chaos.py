"""Chaos soak: four concurrent `generate_many` batches against the simulator's chaos mode.

Every call ends in a `Generation` or a typed `MaiImageError` within its bound, the client's
spend equals what the server reported, the history stays sound, and once everything is closed
no socket, file or thread is left behind. `run_soak` is importable so `bench/reliability` can
report the same figures.
"""

from __future__ import annotations

import collections
import gc
import math
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb import errors, retry
from mai_image_nb.history import DB_NAME
from mai_image_nb.offline import Chaos, Fault, OfflineServer
from tests.conftest import CANARY_KEY, FastClock

from .helpers import client_sockets_to, open_fds, thread_idents

SOAK_BATCHES = 4
SOAK_ITEMS = 125  # per batch: 4 x 125 = 500 calls, each at least one POST
SOAK_TIMEOUT_S = 1.0  # short, yet far above a healthy answer (~10 ms) on a busy 2-core box
SOAK_RETRIES = 2
SOAK_WORKERS = 4
SOAK_IMAGE_SCALE = 1 / 16  # 64x64 images: the soak is about faults, not pixels
SCHEDULING_SLACK_S = 1.0  # gate waits behind other threads' 429s, thread scheduling
DEADLINE_S = 30.0  # for waits on events in the concurrency tests
CHAOS = Chaos(rate=0.3, seed=20260509, stall_s=1.25, retry_after_s=0.05)
BATCH_TYPES = (mai.Generation, errors.MaiImageError)


def item_bound_s(timeout_s: float, max_retries: int, retry_after_s: float) -> float:
    """The longest one call may take: its POST attempts and back-off, then the download's."""
    attempts = 1 + max_retries
    backoff_s = sum(
        min(retry.BACKOFF_INITIAL_S * 2.0**k, retry.BACKOFF_MAX_S) for k in range(max_retries)
    )
    one_phase_s = attempts * timeout_s + max(backoff_s, max_retries * retry_after_s)
    return 2 * one_phase_s + SCHEDULING_SLACK_S


@dataclass
class SoakStats:
    calls: int = 0
    posts: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    untyped: list[str] = field(default_factory=list)
    item_s: list[float] = field(default_factory=list)
    batch_s: list[float] = field(default_factory=list)
    item_bound_s: float = 0.0
    batch_bound_s: float = 0.0
    spent_usd: float = 0.0
    reported_usd: float = 0.0
    unpriced: int = 0  # 2xx answers whose cost could not be read (charged at the estimate)
    estimate_usd: float = 0.0
    sockets_after_close: list[str] = field(default_factory=list)
    new_fds: dict[int, str] = field(default_factory=dict)
    new_threads: dict[int, str] = field(default_factory=dict)
    fds_before: int = 0
    fds_after: int = 0
    threads_before: int = 0
    threads_after: int = 0
    integrity: str = ""
    history_rows: int = 0
    generations: int = 0
    stray_temp_files: int = 0
    server_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_soak(
    home: Path,
    *,
    batches: int = SOAK_BATCHES,
    items: int = SOAK_ITEMS,
    timeout_s: float = SOAK_TIMEOUT_S,
    chaos: Chaos = CHAOS,
) -> SoakStats:
    """Run `batches` concurrent `generate_many` calls of `items` prompts each, then close all.

    Measures; the caller asserts. Each batch runs on its own thread, joined against the
    batch bound, so a hang shows as a failure instead of a stuck run.
    """
    stats = SoakStats(calls=batches * items)
    stats.item_bound_s = item_bound_s(timeout_s, SOAK_RETRIES, chaos.retry_after_s)
    stats.batch_bound_s = math.ceil(items / SOAK_WORKERS) * stats.item_bound_s
    fds_before, threads_before = open_fds(), thread_idents()
    started = time.perf_counter()
    results: list[list[mai.Generation | errors.MaiImageError] | None] = [None] * batches
    crashed: list[BaseException] = []
    timing_lock = threading.Lock()

    server = OfflineServer(image_scale=SOAK_IMAGE_SCALE, seed=3, chaos=chaos).start()
    try:
        client = mai.Client(
            api_key=CANARY_KEY,
            base_url=server.url,
            offline=False,
            history=home,
            timeout=timeout_s,
            max_retries=SOAK_RETRIES,
            max_workers=SOAK_WORKERS,
        )
        try:
            generate = client.generate_params

            def timed_generate(*args: object, **kwargs: object) -> mai.Generation:
                began = time.perf_counter()
                try:
                    return generate(*args, **kwargs)  # type: ignore[arg-type]
                finally:
                    with timing_lock:
                        stats.item_s.append(time.perf_counter() - began)

            client.generate_params = timed_generate  # type: ignore[method-assign]

            def batch(index: int) -> None:
                began = time.perf_counter()
                try:
                    prompts = [f"soak batch {index} item {n}: a lighthouse" for n in range(items)]
                    results[index] = client.generate_many(prompts, progress=False, temperature=0.5)
                except BaseException as exc:
                    crashed.append(exc)
                finally:
                    with timing_lock:
                        stats.batch_s.append(time.perf_counter() - began)

            threads = [
                threading.Thread(target=batch, args=(i,), name=f"soak-batch-{i}", daemon=True)
                for i in range(batches)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + stats.batch_bound_s
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            hung = [t.name for t in threads if t.is_alive()]
            if hung:
                raise AssertionError(f"batches still running after {stats.batch_bound_s} s: {hung}")
            if crashed:
                raise AssertionError(f"generate_many raised instead of filling slots: {crashed!r}")
        finally:
            client.close()
        stats.sockets_after_close = client_sockets_to(server.port)
        stats.spent_usd = client.spent_usd
        stats.reported_usd = server.reported_usd
        stats.estimate_usd = client.estimate()
        stats.posts = server.post_count
        stats.server_errors = [repr(e) for e in server.errors]
    finally:
        server.close()
    stats.seconds = time.perf_counter() - started

    for batch_results in results:
        assert batch_results is not None and len(batch_results) == items
        for result in batch_results:
            outcome: object = result  # whatever the annotations say, look at what came back
            stats.outcomes[type(outcome).__name__] += 1
            if not isinstance(outcome, BATCH_TYPES) or type(outcome) is errors.MaiImageError:
                stats.untyped.append(repr(outcome))  # a bare MaiImageError is the catch-all
            stats.generations += isinstance(outcome, mai.Generation)
            stats.unpriced += isinstance(outcome, errors.ResponseError) and "not JSON" in str(
                outcome
            )  # the chaos mode's truncated JSON: the only 2xx without a readable cost

    with closing(sqlite3.connect(home / DB_NAME)) as conn:
        stats.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stats.history_rows = conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    stats.stray_temp_files = sum(1 for p in (home / "images").iterdir() if p.suffix == ".tmp")
    fds_after, threads_after = open_fds(), thread_idents()
    stats.new_fds = {fd: what for fd, what in fds_after.items() if fd not in fds_before}
    stats.new_threads = {i: name for i, name in threads_after.items() if i not in threads_before}
    stats.fds_before, stats.fds_after = len(fds_before), len(fds_after)
    stats.threads_before, stats.threads_after = len(threads_before), len(threads_after)
    return stats


@pytest.mark.slow
def test_chaos_soak_of_four_concurrent_batches(tmp_path: Path) -> None:
    stats = run_soak(tmp_path / "history")

    assert stats.posts >= 500, stats.posts
    assert stats.untyped == [], "calls that ended outside the typed errors"
    assert sum(stats.outcomes.values()) == stats.calls
    assert stats.outcomes["Generation"] > 0 and len(stats.outcomes) > 1, stats.outcomes
    assert max(stats.item_s) <= stats.item_bound_s, (max(stats.item_s), stats.item_bound_s)
    assert max(stats.batch_s) <= stats.batch_bound_s
    expected_usd = stats.reported_usd + stats.unpriced * stats.estimate_usd
    assert stats.spent_usd == pytest.approx(expected_usd, rel=1e-12, abs=1e-9)
    assert stats.sockets_after_close == [], "client sockets still open after close()"
    assert stats.new_fds == {}, "descriptors left open after close()"
    assert stats.new_threads == {}, "threads left running after close()"
    assert stats.integrity == "ok"
    assert stats.history_rows == stats.generations
    assert stats.stray_temp_files == 0
    assert stats.server_errors == []


def test_close_shuts_pooled_connections_without_waiting_for_the_garbage_collector(
    tmp_path: Path,
) -> None:
    """A timed-out attempt's traceback keeps its connection pool alive in a reference cycle.

    `close()` must still close that pool's sockets at once, not when the cycle is collected.
    """
    gc.collect()
    gc.disable()  # the cycle stays uncollected, as it may for a long time in a real kernel
    try:
        with OfflineServer(image_scale=SOAK_IMAGE_SCALE) as server:
            client = mai.Client(
                api_key=CANARY_KEY,
                base_url=server.url,
                offline=False,
                history=False,
                timeout=0.2,
                max_retries=1,
            )
            client._use_clock(FastClock(), rand=lambda: 0.0)
            server.script(Fault.stall(5.0))
            assert client.generate("a slow lighthouse", cache=False).width > 0
            client.close()
            assert client_sockets_to(server.port) == []
    finally:
        gc.enable()


def test_a_call_still_finishing_is_not_counted_twice_against_the_budget(
    server: OfflineServer,
) -> None:
    """Between its answer (spend recorded) and its end (image stored, listeners told), a call
    must not also keep its reservation: another call that fits the budget must be let through.
    """
    usd = server.usd_per_image
    inside, go_on = threading.Event(), threading.Event()

    def hold_the_first(gen: mai.Generation) -> None:
        if gen.prompt == "the first":
            inside.set()
            go_on.wait(DEADLINE_S)

    with mai.Client(base_url=server.url, history=False, budget_usd=2 * usd) as client:
        client.on_generation(hold_the_first)
        first = threading.Thread(target=client.generate, args=("the first",), daemon=True)
        first.start()
        try:
            assert inside.wait(DEADLINE_S), "the first call never got its answer"
            assert client.spent_usd == pytest.approx(usd)
            second = client.generate("the second")  # spent usd + this usd = the budget
        finally:
            go_on.set()
            first.join(DEADLINE_S)
        assert second.usd_spent == pytest.approx(usd)
        assert client.spent_usd == pytest.approx(2 * usd)
        with pytest.raises(errors.BudgetExceededError):
            client.generate("the third")
