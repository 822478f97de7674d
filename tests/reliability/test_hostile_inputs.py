"""Hostile images and answers: each is a typed error, quickly, with bounded memory.

Both ways in: as the service's answer to a client (simulator faults; the client runs in a
probe process so its memory is measured alone) and as a file given to `read_params`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mai_image_nb.errors import ValidationError
from mai_image_nb.imagemeta import read_params
from mai_image_nb.offline import OfflineServer

from .hostile import MIB, READ_PARAMS_CASE_NAMES, client_cases, read_params_cases

REPO = Path(__file__).resolve().parents[2]
QUICK_S = 3.0  # a hostile input is refused well within this
PROBE_DEADLINE_S = 120.0
CLIENT_PEAK_BYTES = 16 * MIB  # what refusing a hostile answer may allocate (answers are capped)
READ_PARAMS_PEAK_BYTES = 4 * MIB


def run_probe(url: str, calls: int) -> list[dict[str, Any]]:
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.hostile", url, str(calls)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PROBE_DEADLINE_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(run.stdout)
    return results


def test_hostile_answers_end_in_typed_errors(tmp_path: Path) -> None:
    cases = client_cases()
    with OfflineServer(image_scale=1 / 16, response_format="b64_json") as server:
        server.script(*(case.fault for case in cases))
        results = run_probe(server.url, len(cases) + 1)  # the last call meets no fault
        assert not server.errors, server.errors
    *hostile, normal = results
    assert normal["outcome"] == "Generation", normal
    for case, result in zip(cases, hostile, strict=True):
        assert result["outcome"] == case.expect, (case.name, result)
        assert result["traced_peak_bytes"] < CLIENT_PEAK_BYTES, (case.name, result)


@pytest.mark.parametrize("name", READ_PARAMS_CASE_NAMES)
def test_hostile_files_given_to_read_params_are_validation_errors(
    name: str, tmp_path: Path
) -> None:
    source = read_params_cases(tmp_path)[name]
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as info:
            read_params(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # How fast it is refused is measured in bench/reliability.py (hostile_files), not here.
    assert peak < READ_PARAMS_PEAK_BYTES, peak
    assert "\n" not in str(info.value)
