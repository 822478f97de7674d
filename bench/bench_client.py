"""Client costs: one call vs a bare requests floor and the openai SDK, cache hits, import time.

Every call goes to the bundled simulator on 127.0.0.1 with a tiny image, so what
is measured is the client's own overhead, not image making.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

import mai_image_nb as mai
from bench.harness import Row, interleave
from mai_image_nb.generation import Generation, Usage
from mai_image_nb.history import DB_NAME
from mai_image_nb.offline import OfflineServer
from mai_image_nb.offline.schema import GENERATIONS_PATH
from mai_image_nb.params import cache_key, request_body, validate_params

TINY_SCALE = 1 / 64  # a 16×16 picture: the HTTP path, not the drawing


def post_and_fetch(
    session: requests.Session, base_url: str, body: dict[str, object], timeout_s: float
) -> None:
    """The bare floor of one image: POST the body, then GET the image URL of the answer."""
    answer = session.post(base_url + GENERATIONS_PATH, json=body, timeout=timeout_s)
    session.get(answer.json()["data"][0]["url"], timeout=timeout_s).content  # noqa: B018


def per_call(rounds: int) -> list[Row]:
    """`Client.generate(cache=False)` vs bare requests POST+GET vs openai SDK + GET."""
    import httpx
    import openai

    with OfflineServer(image_scale=TINY_SCALE, seed=1) as srv, tempfile.TemporaryDirectory() as tmp:
        body = request_body(validate_params("a lighthouse", temperature=0))
        session = requests.Session()
        no_history = mai.Client(base_url=srv.url, history=False)
        with_history = mai.Client(base_url=srv.url, history=Path(tmp) / "h")
        sdk = openai.OpenAI(api_key="offline", base_url=srv.url + "/v1", max_retries=0)
        downloads = httpx.Client()

        def floor() -> None:
            post_and_fetch(session, srv.url, body, 30)

        def peer() -> None:
            result = sdk.images.generate(
                model="microsoft/mai-image-2.5",
                prompt="a lighthouse",
                extra_body={"aspect_ratio": "1:1", "temperature": 0},
            )
            assert result.data
            downloads.get(str(result.data[0].url)).content  # noqa: B018

        def client_call() -> None:
            no_history.generate("a lighthouse", temperature=0, cache=False)

        def client_stored() -> None:
            with_history.generate("a lighthouse", temperature=0, cache=False)

        times = interleave(
            {
                "client": client_call,
                "client+history": client_stored,
                "floor": floor,
                "peer": peer,
            },
            rounds=rounds,
        )
        for c in (no_history, with_history):
            c.close()
        sdk.close()
        downloads.close()
        session.close()
    ratio = statistics.median(times["client"]) / statistics.median(times["floor"])
    peer_ratio = statistics.median(times["client"]) / statistics.median(times["peer"])
    return [
        Row(
            "generate(cache=False), history=False",
            times["client"],
            "bare requests POST+GET",
            times["floor"],
            goal="≤ 1.2× floor",
            ok=ratio <= 1.2,
        ),
        Row(
            "generate(cache=False), history=False",
            times["client"],
            "openai SDK images.generate + GET",
            times["peer"],
            goal="< peer",
            ok=peer_ratio < 1.0,
        ),
        Row(
            "generate(cache=False), with history (fsync'd)",
            times["client+history"],
            "bare requests POST+GET",
            times["floor"],
            note="the history makes every image durable before returning (fsync of file and db)",
        ),
    ]


def _fill_history(folder: Path, n: int) -> tuple[mai.History, list[str]]:
    """A history of `n` tiny generations, written quickly in one transaction per 500."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buffer, format="PNG")
    png = buffer.getvalue()
    started = time.perf_counter()
    history = mai.History(folder)
    keys: list[str] = []
    now = datetime.now(timezone.utc)
    for i in range(n):
        params = validate_params(f"prompt number {i} of a cat", temperature=(i % 20) / 10)
        key = cache_key(params, "offline")
        keys.append(key)
        generation = Generation(
            id=f"bench-{i:06d}",
            params=params,
            service="offline",
            created=now,
            width=8,
            height=8,
            image_format="png",
            url=None,
            usage=Usage(1.0, 0.0627),
            elapsed_s=0.1,
            data=png,
        )
        history.add(generation, cache_key=key)
    print(f"  filled {n:,} records in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return history, keys


def cache_hit(n: int, rounds: int) -> list[Row]:
    """A cache hit among `n` generations vs the bare indexed SQLite lookup it wraps."""
    with tempfile.TemporaryDirectory() as tmp:
        history, keys = _fill_history(Path(tmp) / "h", n)
        with OfflineServer(image_scale=TINY_SCALE) as srv:
            client = mai.Client(base_url=srv.url, history=history)
            client.service = "offline"  # the rows above were made "offline"
            pick = n // 2
            target = validate_params(f"prompt number {pick} of a cat", temperature=(pick % 20) / 10)
            key = keys[pick]
            db = sqlite3.connect(Path(tmp) / "h" / DB_NAME)

            def hit() -> None:
                found = client.generate(target.prompt, temperature=target.temperature)
                assert found.cached

            def bare() -> None:
                row = db.execute(
                    "SELECT * FROM generations WHERE cache_key = ? ORDER BY seq DESC LIMIT 1",
                    (key,),
                ).fetchone()
                assert row is not None

            times = interleave({"hit": hit, "bare": bare}, rounds=rounds)
            sent = srv.post_count
            db.close()
            client.close()
        history.close()
    return [
        Row(
            f"cache hit, {n:,} generations in the history",
            times["hit"],
            "bare SQLite indexed SELECT",
            times["bare"],
            goal="median ≤ 2 ms, no request",
            ok=statistics.median(times["hit"]) <= 2.0 and sent == 0,
            note=f"requests sent during the hits: {sent}",
        )
    ]


def import_time(rounds: int) -> list[Row]:
    """`import mai_image_nb` vs `import requests, PIL.Image`, each in a fresh interpreter."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return (time.perf_counter() - started) * 1000

    subject: list[float] = []
    baseline: list[float] = []
    for _ in range(rounds):
        subject.append(run("import mai_image_nb"))
        baseline.append(run("import requests, PIL.Image"))
    ratio = statistics.median(subject) / statistics.median(baseline)
    return [
        Row(
            "import mai_image_nb (fresh process)",
            subject,
            "import requests, PIL.Image",
            baseline,
            goal="≤ 1.3×",
            ok=ratio <= 1.3,
        )
    ]


def simulator_throughput(images: int) -> list[Row]:
    """Full-size 1:1 images per second over HTTP (2 clients) vs drawing them in-process."""
    from concurrent.futures import ThreadPoolExecutor

    from mai_image_nb.offline.render import render_png

    drawn: list[float] = []
    for i in range(min(images, 8)):
        started = time.perf_counter()
        render_png(f"a red lighthouse number {i}", "1:1", 1.0, variation=i)
        drawn.append((time.perf_counter() - started) * 1000)
    with OfflineServer(seed=3) as srv:
        sessions = [requests.Session() for _ in range(2)]

        def one(i: int) -> float:
            started = time.perf_counter()
            session = sessions[i % 2]
            body = request_body(validate_params(f"a red lighthouse number {i}", temperature=1.0))
            post_and_fetch(session, srv.url, body, 60)
            return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            served = list(pool.map(one, range(images)))
        wall_s = time.perf_counter() - started
        for s in sessions:
            s.close()
    per_second = images / wall_s
    return [
        Row(
            "simulator: 1:1 full-size image over HTTP, 2 clients",
            served,
            "render+encode in-process (one image)",
            drawn,
            goal="≥ 8 images/s",
            ok=per_second >= 8,
            note=f"throughput {per_second:.1f} images/s over {images} images",
        )
    ]


def run(quick: bool = False) -> list[Row]:
    rows = per_call(rounds=30 if quick else 200)
    rows += cache_hit(n=2_000 if quick else 10_000, rounds=50 if quick else 500)
    rows += import_time(rounds=3 if quick else 15)
    rows += simulator_throughput(images=16 if quick else 64)
    return rows
