"""A history writer that the crash tests kill; also the tests' generation factory.

    python -m tests.unit.crash_writer FOLDER PREFIX [CRASH_POINT]

Adds generations `PREFIX-0`, `PREFIX-1`, ... to the history in FOLDER and prints each id
(flushed) only after `add()` returned. With a CRASH_POINT, the second add kills the process
with SIGKILL at that step of the save: `after_temp` (image temporary file written),
`after_rename` (image renamed into place, row not committed), `after_commit` (add returned).
"""

from __future__ import annotations

import io
import itertools
import os
import random
import signal
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from mai_image_nb.generation import Generation, Usage
from mai_image_nb.history import History
from mai_image_nb.params import Params, cache_key

CRASH_POINTS = ("after_temp", "after_rename", "after_commit")
IMAGE_PX = 48


def image_bytes(
    seed: int, *, size: tuple[int, int] = (IMAGE_PX, IMAGE_PX), fmt: str = "PNG"
) -> bytes:
    """A small noisy image (noise so the file is not trivially small), the same for a seed."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def make_generation(
    gid: str,
    prompt: str | None = None,
    *,
    data: bytes | None = None,
    image_format: str = "png",
    service: str = "offline",
    usage: Usage | None = Usage(credits_used=1.0, usd_spent=0.0627),  # noqa: B008 - frozen
    created: datetime | None = None,
    **params: Any,
) -> Generation:
    """A Generation as the client would make it, with a real image of the given format."""
    fmt = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[image_format]
    payload = data if data is not None else image_bytes(zlib.crc32(gid.encode()), fmt=fmt)
    with Image.open(io.BytesIO(payload)) as image:
        width, height = image.size
    return Generation(
        id=gid,
        params=Params(
            prompt=prompt if prompt is not None else f"a lighthouse at dusk {gid}", **params
        ),
        service=service,
        created=created or datetime.now(timezone.utc),
        width=width,
        height=height,
        image_format=image_format,
        url=None,
        usage=usage,
        elapsed_s=0.25,
        data=payload,
    )


def key_of(gen: Generation) -> str:
    return cache_key(gen.params, gen.service)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str) -> None:
    """Make the next image rename (or the end of the next add) kill this process."""
    if point == "after_commit":
        return  # handled in main, right after add() returns
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(dst).parent.name != "images":  # records and thumbnails: no crash point
            real_replace(src, dst, **kwargs)
            return
        if point == "after_temp":
            _kill_self()
        real_replace(src, dst, **kwargs)
        _kill_self()

    os.replace = replace


def main(argv: list[str]) -> int:
    folder, prefix = argv[1], argv[2]
    point = argv[3] if len(argv) > 3 else None
    if point is not None and point not in CRASH_POINTS:
        print(f"unknown crash point {point!r}", file=sys.stderr)
        return 2
    with History(folder) as history:
        for index in itertools.count():
            gen = make_generation(f"{prefix}-{index}", data=image_bytes(index))
            if point is not None and index == 1:
                _arm(point)
            history.add(gen, cache_key=key_of(gen))
            print(gen.id, flush=True)
            if point is not None and index == 1:
                _kill_self()
    return 0  # pragma: no cover - the loop ends only by being killed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
