"""transport.py: error answers of every shape become our errors, with the server's own words.

Few on purpose: the client's side of these is tested over loopback in
tests/contract/test_client_http.py.
"""

from __future__ import annotations

import json

import pytest
from requests.structures import CaseInsensitiveDict

from mai_image_nb import errors
from mai_image_nb.offline import faults
from mai_image_nb.transport import Reply, error_for_status


def reply(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return Reply(status, CaseInsensitiveDict(headers or {}), raw)


@pytest.mark.parametrize(
    ("answer", "cls", "message", "request_id", "kind"),
    [
        pytest.param(
            reply(400, faults.error_payload(400, "prompt is too long", "err_validation", "r-1")),
            errors.APIStatusError, "prompt is too long", "r-1", "err_validation",
            id="provider-shape",
        ),
        pytest.param(
            reply(401, {"message": "bad key"}), errors.AuthenticationError, "bad key", None, None,
            id="plain-message",
        ),
        pytest.param(
            reply(403, {"error": "no credits"}), errors.AuthenticationError, "no credits", None,
            None, id="error-string",
        ),
        pytest.param(
            reply(422, {"message": ["a", "b"]}), errors.APIStatusError, "a; b", None, None,
            id="message-list",
        ),
        pytest.param(
            reply(429, b"<html>busy</html>", {"x-request-id": "r-h"}), errors.RateLimitError,
            "Too Many Requests", "r-h", None, id="html-page",
        ),
        pytest.param(
            reply(599, b""), errors.APIStatusError, "error", None, None, id="unknown-empty",
        ),
    ],
)  # fmt: skip
def test_error_for_status_reads_every_shape(
    answer: Reply, cls: type, message: str, request_id: str | None, kind: str | None
) -> None:
    error = error_for_status(answer)
    assert type(error) is cls
    assert error.status_code == answer.status
    assert error.message == message
    assert error.request_id == request_id
    assert error.kind == kind
    assert f"HTTP {answer.status}" in str(error)


def test_a_huge_message_is_cut() -> None:
    error = error_for_status(reply(500, {"message": "x" * 50_000}))
    assert len(error.message) <= 1000
