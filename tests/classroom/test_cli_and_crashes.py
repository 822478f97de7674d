"""The CLI as a real process: first line the URL, tokens.csv complete by then, SIGINT/SIGTERM
stop cleanly, the key never on the command line; and kill -9 mid-load, three times."""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from mai_image_nb.classroom import Classroom
from mai_image_nb.offline import OfflineServer

from .conftest import PRICE, TEACHER_KEY, post, upstream_prompts
from .gateway_process import (
    MAX_INFLIGHT,
    GatewayProcess,
    load_until_killed,
    read_tokens,
    upstream_busy,
)


@pytest.fixture
def names(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("ada\nbob\n# a comment\n\ncy\ndee\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_url_after_tokens_and_stops_on_signal(
    upstream: OfflineServer, folder: Path, names: Path, sig: int
) -> None:
    gateway = GatewayProcess(folder, names, upstream.url, TEACHER_KEY)
    tokens = read_tokens(folder)
    assert list(tokens) == ["ada", "bob", "cy", "dee"]
    assert (folder / "url").read_text().strip() == gateway.url
    assert stat.S_IMODE((folder / "tokens.csv").stat().st_mode) == 0o600
    assert post(gateway.url, tokens["bob"], {"prompt": "a fox"}).status_code == 200
    code, out, err = gateway.stop(sig)
    assert code == 0, err
    assert out.strip() == ""  # the URL was the one line on stdout
    assert "stopped" in err and TEACHER_KEY not in out + err
    again = GatewayProcess(folder, names, upstream.url, TEACHER_KEY)
    assert read_tokens(folder) == tokens  # a restart keeps every token
    assert again.stop()[0] == 0


def test_cli_reads_the_key_from_a_file_and_refuses_to_start_without_one(
    upstream: OfflineServer, folder: Path, names: Path, tmp_path: Path
) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "AIMLAPI_KEY"}
    base = [sys.executable, "-m", "mai_image_nb.classroom", "--folder", str(folder),
            "--students", str(names), "--port", "0", "--upstream", upstream.url]  # fmt: skip
    refused = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "AIMLAPI_KEY" in refused.stderr
    key_file = tmp_path / "key"
    key_file.write_text(TEACHER_KEY + "\n")
    proc = subprocess.Popen([*base, "--api-key-file", str(key_file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    token = read_tokens(folder)["ada"]
    assert post(url, token, {"prompt": "a fox"}).status_code == 200  # the key reached upstream
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and TEACHER_KEY not in out + err


def test_kill_9_mid_load_charges_between_received_and_sent(folder: Path, names: Path) -> None:
    with OfflineServer(image_scale=0.0625, seed=5, api_key=TEACHER_KEY,
                       response_format="b64_json", latency_s=0.3) as upstream:  # fmt: skip
        received, gateway = load_until_killed(
            folder, names, upstream.url, TEACHER_KEY, cycles=3, posts_between_kills=8,
            upstream_posts=lambda: upstream.post_count,
            upstream_full=lambda: upstream_busy(upstream, PRICE) >= MAX_INFLIGHT,
        )  # fmt: skip
        assert gateway.stop()[0] == 0
        sent = dict.fromkeys(received, 0)
        for prompt in upstream_prompts(upstream):  # whole requests only
            name = prompt.split(" ")[0]
            sent[name] = sent.get(name, 0) + 1
        with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as room:
            status = {row["name"]: row for row in room.status()}
        assert not upstream.errors
    assert sum(received.values()) >= 20
    assert sum(row["errors"] for row in status.values()) >= 3 * MAX_INFLIGHT  # recovered ones
    for name, row in status.items():
        charged = row["spent_usd"]
        assert received[name] * PRICE - 1e-9 <= charged <= sent.get(name, 0) * PRICE + 1e-9, (
            name, received[name], sent.get(name), charged,
        )  # fmt: skip
        assert row["reserved_usd"] == 0
