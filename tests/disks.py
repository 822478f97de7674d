"""Real small filesystems for the tests of full and read-only disks (root only, as in CI).

A tmpfs of a given size is mounted for the test and unmounted after; where mounting is not
possible the test is skipped with its reason rather than faked.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
CAN_MOUNT = IS_ROOT and shutil.which("mount") is not None and shutil.which("umount") is not None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real, small tmpfs at `where` (root only), unmounted afterwards."""
    where.mkdir(parents=True)
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}): the real-filesystem case is untested")
    try:
        yield where
    finally:
        try:
            _run("umount", str(where))
        except subprocess.CalledProcessError:
            # Still busy (a test left a file open): detach it anyway, so no mount outlives
            # the test inside pytest's temporary folders, then fail the test.
            _run("umount", "--lazy", str(where))
            raise


def remount_read_only(where: Path) -> None:
    _run("mount", "-o", "remount,ro", str(where))


def fill_up(path: Path) -> None:
    """Write `path` until the filesystem is full (ENOSPC), and keep it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\x00" * 4096)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
