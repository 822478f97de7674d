"""A history reader process for the readers-and-writers test: reads hard until a deadline.

    python -m tests.reliability.rw_reader FOLDER SECONDS

Does what a notebook or the Studio's gallery does while another process writes: opens the
history (now and then again), counts, pages, searches, looks records up, reads and decodes
their images, makes thumbnails. Prints one JSON line: operations done and every error seen.
"""

from __future__ import annotations

import io
import json
import sys
import time
import traceback
from typing import Any

from PIL import Image

from mai_image_nb.history import History

REOPEN_EVERY_S = 0.5  # open the history again (its start-up clean-up takes the write lock)
FULL_SCAN_EVERY_S = 2.0  # iterate every record (all pages) this often
MAX_ERRORS_KEPT = 20


def decode(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def one_round(history: History, state: dict[str, Any]) -> int:
    """One pass of reads; returns how many operations it made. Raises on anything wrong."""
    ops = 0
    count = len(history)
    ops += 1
    if count < state["count"]:
        raise AssertionError(f"the history shrank from {state['count']} to {count} records")
    state["count"] = count
    newest = history.search(limit=8)
    ops += 1
    seqs = [int(g.id.rsplit("-", 1)[1]) for g in newest if g.id.startswith(state["prefix"])]
    if seqs != sorted(seqs, reverse=True):
        raise AssertionError(f"search() is not newest first: {[g.id for g in newest]}")
    for gen in newest[:3]:
        if decode(gen.data) != (gen.width, gen.height):
            raise AssertionError(f"{gen.id}: the image does not match its record")
        again = history[gen.id]
        if again.prompt != gen.prompt or gen.id not in history:
            raise AssertionError(f"{gen.id}: looking it up gave another record")
        thumb = history.thumbnail(gen.id)
        if max(decode(thumb)) > 256:
            raise AssertionError(f"{gen.id}: the thumbnail is too large")
        ops += 4
    matching = history.count("lighthouse dusk")
    if matching > len(history):  # records only grow: what matched then exists now
        raise AssertionError(f"the text search counts {matching}, more records than exist")
    history.search("lighthouse", limit=5, offset=count // 2)
    ops += 3
    now = time.monotonic()
    if now - state["scanned_at"] >= FULL_SCAN_EVERY_S:
        seen = sum(1 for _ in history)
        if seen < count:
            raise AssertionError(f"iteration gave {seen} records, len() said {count}")
        state["scanned_at"] = now
        ops += 1
    return ops


def main(argv: list[str]) -> int:
    folder, seconds = argv[1], float(argv[2])
    deadline = time.monotonic() + seconds
    state: dict[str, Any] = {"count": 0, "scanned_at": 0.0, "prefix": "rw-"}
    ops = 0
    slowest_open_s = 0.0
    errors: list[str] = []
    error_count = 0
    while time.monotonic() < deadline:
        opened_at = time.monotonic()
        try:
            with History(folder) as history:
                slowest_open_s = max(slowest_open_s, time.monotonic() - opened_at)
                ops += 1
                while time.monotonic() < min(deadline, opened_at + REOPEN_EVERY_S):
                    ops += one_round(history, state)
        except Exception:
            error_count += 1
            if len(errors) < MAX_ERRORS_KEPT:
                errors.append(traceback.format_exc())
    print(
        json.dumps(
            {"ops": ops, "errors": error_count, "details": errors, "slowest_open_s": slowest_open_s}
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
