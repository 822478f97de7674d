"""The suite's own exit codes: only a marker expression that deselects everything passes empty.

Each case runs pytest in a subprocess over a real test file and reads its exit code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/unit/test_retry.py"


def pytest_exit(*args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         TARGET, *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done.returncode


@pytest.mark.slow
def test_a_keyword_typo_still_fails_with_exit_5() -> None:
    assert pytest_exit("-k", "no_test_is_called_this_typo") == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.slow
def test_a_marker_that_deselects_everything_passes() -> None:
    assert pytest_exit("-m", "e2e") == pytest.ExitCode.OK


@pytest.mark.slow
def test_a_marker_and_a_keyword_typo_still_fail() -> None:
    assert pytest_exit("-m", "not e2e", "-k", "typo_xyz") == pytest.ExitCode.NO_TESTS_COLLECTED
