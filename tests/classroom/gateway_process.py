"""The gateway as a separate process (the CLI), for kill -9 cycles in the tests and the benchmark.

`load_until_killed` runs students against whichever gateway is current, kills it mid-load,
restarts it on the same folder, and returns what each student sent and received.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import DEFAULT_MODEL

START_TIMEOUT_S = 30.0


class GatewayProcess:
    """`python -m mai_image_nb.classroom` on a folder; `.url` once its first line is printed."""

    def __init__(self, folder: Path, students: Path, upstream: str, key: str,
                 *extra: str) -> None:  # fmt: skip
        env = {**os.environ, "AIMLAPI_KEY": key}
        self.log_path = folder.parent / f"gateway-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w", encoding="utf-8")  # a pipe could fill and block it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mai_image_nb.classroom", "--folder", str(folder),
             "--students", str(students), "--budget-usd", "50", "--port", "0",
             "--upstream", upstream, *extra],
            stdout=subprocess.PIPE, stderr=self._log, env=env, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # the URL, once tokens.csv is complete
        if not line.startswith("http://"):
            self.proc.kill()
            self.proc.communicate(timeout=START_TIMEOUT_S)
            self._log.close()
            err = self.log_path.read_text(encoding="utf-8")
            raise AssertionError(f"the gateway did not start: {line!r} {err[-2000:]}")
        self.url = line

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=START_TIMEOUT_S)
        self._log.close()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Signal, wait; (exit status, the rest of stdout, everything on stderr)."""
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=START_TIMEOUT_S)
        self._log.close()
        return self.proc.returncode, out, self.log_path.read_text(encoding="utf-8")


def read_tokens(folder: Path) -> dict[str, str]:
    with (folder / "tokens.csv").open(encoding="utf-8") as f:
        return {row["name"]: row["token"] for row in csv.DictReader(f)}


MAX_INFLIGHT = 4


def upstream_busy(server: OfflineServer, price: float) -> int:
    """Requests the simulator has received and not answered yet (all answers charged)."""
    return server.post_count - round(server.reported_usd / price)


def load_until_killed(
    folder: Path, students: Path, upstream_url: str, key: str, *, cycles: int,
    posts_between_kills: int, upstream_posts: Callable[[], int],
    upstream_full: Callable[[], bool],
) -> tuple[Counter[str], GatewayProcess]:  # fmt: skip
    """Students post in a loop while the gateway is killed `cycles` times (kill -9) mid-load.

    Each kill waits for `posts_between_kills` more upstream POSTs (`upstream_posts()`), then
    for a moment when every one of the gateway's MAX_INFLIGHT slots is a request the upstream
    holds unanswered (`upstream_full()`): those are the requests whose outcome the ledger
    cannot know. (It also keeps kills out of the microseconds between a request being marked
    sent and being written, where the rule — charge the estimate — may charge a request the
    service never read.) Returns the 200 answers each student received and the last gateway.
    """
    count = upstream_posts
    gateway = GatewayProcess(
        folder, students, upstream_url, key, "--max-inflight", str(MAX_INFLIGHT)
    )
    tokens = read_tokens(folder)
    received: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    current = {"url": gateway.url}

    def student(name: str, token: str) -> None:
        i = 0
        with requests.Session() as session:
            while not stop.is_set():
                i += 1
                body = {"model": DEFAULT_MODEL, "prompt": f"{name} {i}"}
                try:
                    r = session.post(
                        current["url"] + "/v1/images/generations",
                        data=json.dumps(body),
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    )
                except requests.RequestException:
                    stop.wait(0.02)  # the gateway is down: try the new one
                    continue
                if r.status_code == 200:
                    with lock:
                        received[name] += 1

    threads = [threading.Thread(target=student, args=item) for item in tokens.items()]
    for t in threads:
        t.start()
    try:
        for _ in range(cycles):
            target = count() + posts_between_kills
            deadline = time.monotonic() + START_TIMEOUT_S
            while count() < target or not upstream_full():
                assert time.monotonic() < deadline, "the load did not reach the upstream"
                stop.wait(0.001)
            gateway.kill9()
            gateway = GatewayProcess(
                folder, students, upstream_url, key, "--max-inflight", str(MAX_INFLIGHT)
            )
            current["url"] = gateway.url
        target = count() + posts_between_kills
        while count() < target:
            stop.wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
    return received, gateway
