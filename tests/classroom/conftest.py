"""Fixtures for the classroom gateway: the simulator as upstream (with the teacher's canary key),
a gateway over it in a temporary folder, and plain HTTP helpers for students."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mai_image_nb.classroom import Classroom
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import DEFAULT_MODEL

TEACHER_KEY = "sk-teacher-canary-7d1e90b2c4a35f68"
PRICE = 0.0627  # the simulator's usd_spent per image
GEN = "/v1/images/generations"


@pytest.fixture
def upstream() -> Iterator[OfflineServer]:
    """The simulator, requiring the teacher's key, with small b64 images (fast, no URLs)."""
    with OfflineServer(
        image_scale=0.0625, seed=3, api_key=TEACHER_KEY, response_format="b64_json"
    ) as srv:
        yield srv
        assert not srv.errors, f"the simulator raised: {srv.errors!r}"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "class"


@pytest.fixture
def room(upstream: OfflineServer, folder: Path) -> Iterator[Classroom]:
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY, budget_usd=1.0) as r:
        yield r
    assert_no_gateway_threads()


def assert_no_gateway_threads() -> None:
    """Every thread a closed gateway started (server, connections, gallery) has ended."""
    left = [t.name for t in threading.enumerate() if t.name.startswith("classroom-")]
    assert not left, f"threads outlived the gateway: {left}"


def post(url: str, token: str | None, body: Any = None, *, raw: bytes | None = None,
         timeout: float = 30.0) -> requests.Response:  # fmt: skip
    """One POST of a generation body (or raw bytes) with a bearer token, on a fresh session."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict) and "model" not in body:
        body = {"model": DEFAULT_MODEL, **body}  # what the client always sends
    data = raw if raw is not None else json.dumps(body).encode()
    with requests.Session() as session:
        return session.post(url + GEN, data=data, headers=headers, timeout=timeout)


def get(url: str, path: str, token: str | None, *, timeout: float = 30.0) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with requests.Session() as session:
        return session.get(url + path, headers=headers, timeout=timeout)


def admin_post(url: str, path: str, token: str | None, body: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with requests.Session() as session:
        return session.post(url + path, json=body, headers=headers, timeout=30.0)


def upstream_prompts(server: OfflineServer) -> list[str]:
    """The prompts the upstream received, in order of arrival."""
    return [r.json["prompt"] for r in server.requests if isinstance(r.json, dict)]
