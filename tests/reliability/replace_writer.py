"""A writer that replaces one record and is killed at a step of that save (see test_crash_points).

    python -m tests.reliability.replace_writer FOLDER CRASH_POINT

Adds `same-id` (the old record, 40x30), prints `old`; then adds `same-id` again (the new one,
64x64, another prompt) with the crash point armed as tests/unit/crash_writer.py arms it, and
prints `new` once that `add()` returned (before the `after_commit` kill).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from mai_image_nb.generation import Generation
from mai_image_nb.history import History
from tests.unit.crash_writer import (
    CRASH_POINTS,
    _arm,
    _kill_self,
    image_bytes,
    key_of,
    make_generation,
)

RECORD_ID = "same-id"


@dataclass(frozen=True)
class Version:
    """One version of the record: what it says and the image it has."""

    prompt: str
    size: tuple[int, int]
    seed: int

    def generation(self) -> Generation:
        data = image_bytes(self.seed, size=self.size)
        return make_generation(RECORD_ID, self.prompt, data=data)


OLD = Version("the old prompt", (40, 30), 1)
NEW = Version("the new prompt", (64, 64), 2)


def main(argv: list[str]) -> int:
    folder, point = argv[1], argv[2]
    if point not in CRASH_POINTS:
        print(f"unknown crash point {point!r}", file=sys.stderr)
        return 2
    with History(folder) as history:
        old = OLD.generation()
        history.add(old, cache_key=key_of(old))
        print("old", flush=True)
        _arm(point)
        new = NEW.generation()
        history.add(new, cache_key=key_of(new))
        print("new", flush=True)
        _kill_self()
    return 0  # pragma: no cover - killed above


if __name__ == "__main__":
    sys.exit(main(sys.argv))
