"""The crash points tests/unit/test_history_crash.py does not cover: a save that replaces a record.

Adding an id again replaces its record (API.md). A writer killed at each step of that save
(after the temporary file, after the rename, after the commit) must leave the record all old or
all new: its row and its image from the same version, never the old row over the new image. A
new image renamed into place is paid for and whole, so reopening adopts it (the replace is
rolled forward); only a save killed before its image landed leaves the old version.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mai_image_nb.history import History
from tests.unit.crash_writer import CRASH_POINTS, image_bytes
from tests.unit.test_history_crash import check_folder

from .replace_writer import NEW, OLD, RECORD_ID, Version

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

REPO = Path(__file__).resolve().parents[2]
EXIT_DEADLINE_S = 60.0


def _version_of(folder: Path) -> Version:
    """Which version the stored record is, asserting its row and its image agree."""
    with History(folder) as history:
        gen = history[RECORD_ID]
        for version in (OLD, NEW):
            if gen.prompt == version.prompt:
                assert (gen.width, gen.height) == version.size, "row and image disagree"
                assert gen.data == image_bytes(version.seed, size=version.size), (
                    f"the {version.prompt!r} row shows another version's image"
                )
                assert gen.image.size == version.size
                return version
    raise AssertionError(f"unknown prompt {gen.prompt!r}")


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_each_step_of_replacing_a_record_is_all_old_or_all_new(tmp_path: Path, point: str) -> None:
    folder = tmp_path / "h"
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.replace_writer", str(folder), point],
        cwd=REPO,
        capture_output=True,
        timeout=EXIT_DEADLINE_S,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr.decode(errors="replace")
    printed = run.stdout.decode().split()
    assert printed == (["old", "new"] if point == "after_commit" else ["old"])
    # after the rename the new image is paid and whole: reopening adopts it (roll forward)
    expected = OLD if point == "after_temp" else NEW
    assert _version_of(folder) == expected
    check_folder(folder, [RECORD_ID])  # integrity, no temporary file, no orphan image
    assert len(list((folder / "images").iterdir())) == 1


def test_a_replaced_record_lists_and_shows_the_image_it_really_has(tmp_path: Path) -> None:
    with History(tmp_path / "h") as history:
        for version in (OLD, NEW, OLD):  # the third save reuses the first file name
            gen = version.generation()
            history.add(gen, cache_key=f"key-{version.seed}")
            (record,) = history.to_records()
            assert Path(record["file"]).read_bytes() == gen.data
            assert history[RECORD_ID].data == gen.data
            assert history.thumbnail(RECORD_ID)
        assert len(list((tmp_path / "h" / "images").iterdir())) == 1
        assert len(list((tmp_path / "h" / "thumbs").iterdir())) == 1
