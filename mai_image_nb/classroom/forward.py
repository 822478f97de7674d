"""One student's generation request, from token to answer: validate, hold, queue, send, settle.

Pure decisions over the gateway's parts (ledger, queue, upstream, gallery); `handler.py`
reads the HTTP request and writes the `Answer` this returns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mai_image_nb import retry, transport
from mai_image_nb.errors import APITimeoutError, MaiImageError, ResponseError, ValidationError
from mai_image_nb.offline.faults import error_payload, new_request_id
from mai_image_nb.offline.schema import parse_json, request_schema, validate_body
from mai_image_nb.params import validate_params

from .ledger import Hold, LedgerWriteError, Refusal, Student
from .queue import QueueClosedError
from .terms import to_micro, to_usd

if TYPE_CHECKING:
    from .server import Gateway

__all__ = ["BUDGET_KIND", "REFUSED_KIND", "Answer", "error_answer", "generate", "json_answer"]

log = logging.getLogger("mai_image_nb.classroom")

BUDGET_KIND = "class_budget_exhausted"
REFUSED_KIND = "upstream_refused_class_key"
ACCOUNT_REFUSALS = (401, 402, 403)  # the service refusing the teacher's key or account
REFUSAL_SHOWN_CHARS = 300
MAX_GATE_ROUNDS = 5  # a request that meets this many 429s in a row gets the 429 itself
PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-request-id")


@dataclass
class Answer:
    """What the handler sends back: status, body and a few headers; and what it does once
    the answer is written (or could not be): work the student need not wait for."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    after_sent: Callable[[], None] | None = None


def json_answer(status: int, payload: object) -> Answer:
    return Answer(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def error_answer(
    status: int,
    message: str,
    kind: str,
    data: dict[str, Any] | None = None,
    *,
    request_id: str | None = None,
) -> Answer:
    """An error in the provider's shape (message, requestId, error.data.kind, statusCode),
    with a new request id unless given one."""
    request_id = request_id or new_request_id()
    payload = error_payload(status, message, kind, request_id)
    if data:
        payload["error"]["data"].update(data)
    answer = json_answer(status, payload)
    answer.headers["x-request-id"] = request_id
    return answer


def _fields(raw: bytes) -> tuple[dict[str, Any] | None, Answer | None]:
    """The body's schema fields, validated like the client validates; else a 400."""
    try:
        body = parse_json(raw)
    except (ValueError, RecursionError):
        return None, error_answer(
            400, "Invalid request body: not JSON (UTF-8, no NaN or Infinity)", "err_validation"
        )
    problems = validate_body(body)
    if problems:
        return None, error_answer(400, "Invalid request body: " + "; ".join(problems),
                                  "err_validation")  # fmt: skip
    known = {k: v for k, v in body.items() if k in request_schema().get("properties", {})}
    checked = {k: known[k] for k in
               ("aspect_ratio", "temperature", "max_tokens", "max_completion_tokens", "model")
               if k in known and known[k] is not None}  # fmt: skip
    try:
        validate_params(known.get("prompt"), **checked)
    except ValidationError as exc:
        return None, error_answer(400, f"Invalid request body: {exc.message}", "err_validation")
    return known, None


def _budget_refusal(student: Student, refusal: Refusal) -> Answer:
    budget, committed = to_usd(refusal.budget_micro), to_usd(refusal.committed_micro)
    message = (
        f"the class budget of ${budget:.2f} for {student.name} is used up: "
        f"${committed:.4f} spent or reserved, this needs about "
        f"${to_usd(refusal.estimate_micro):.4f} more; ask your teacher"
    )
    return error_answer(402, message, BUDGET_KIND, {
        "budget_usd": budget, "spent_usd": committed,
        "estimate_usd": to_usd(refusal.estimate_micro),
    })  # fmt: skip


def generate(gateway: Gateway, student: Student, raw: bytes) -> Answer:
    """Answer one `POST /v1/images/generations` of `student` (already authenticated)."""
    started = time.monotonic()
    fields, refused = _fields(raw)
    if refused is not None or fields is None:
        gateway.ledger.note_refusal(student.name, {}, 400)
        return refused or error_answer(400, "Invalid request body", "err_validation")
    held = gateway.ledger.hold(student.name, gateway.estimate_micro)
    if isinstance(held, Refusal):
        gateway.ledger.note_refusal(student.name, fields, 402)
        return _budget_refusal(student, held)
    answer = _send(gateway, held, fields)
    # Every request is in the ledger; the log line is for --verbose.
    log.debug("%s: HTTP %d in %.2f s", student.name, answer.status, time.monotonic() - started)
    return answer


def _send(gateway: Gateway, hold: Hold, fields: dict[str, Any]) -> Answer:
    """Queue, send and settle; the hold is dropped, settled or released whatever happens."""
    try:
        for round_number in range(MAX_GATE_ROUNDS):
            try:
                ticket = gateway.queue.acquire(hold.student, first=round_number > 0)
            except QueueClosedError:
                return error_answer(503, "The class gateway is stopping; try again soon",
                                    "err_unavailable")  # fmt: skip
            again = False
            try:
                reply = gateway.upstream.post(
                    fields, before_send=lambda: _mark_sent(gateway, hold, fields)
                )
                if reply.status == 429 and round_number + 1 < MAX_GATE_ROUNDS:
                    # Close the gate before this slot is given back, so nobody slips through.
                    again = _pause_for_429(gateway, reply.headers, round_number)
            except LedgerWriteError:
                return error_answer(503, "The class gateway cannot keep its books right now (is "
                                    "its disk full?): nothing was sent or charged; tell your "
                                    "teacher", "err_unavailable")  # fmt: skip
            except APITimeoutError:
                _finish(gateway, hold, 504, None)
                return error_answer(504, "The image service did not answer in time",
                                    "err_gateway_timeout")  # fmt: skip
            except ResponseError as exc:  # a 2xx too large to pass on: it may have been charged
                _finish(gateway, hold, 502, hold.estimate_micro)
                return error_answer(502, f"The image service's answer was unusable: "
                                    f"{gateway.upstream.scrub_text(exc.message)}",
                                    "err_bad_gateway")  # fmt: skip
            except MaiImageError as exc:
                _finish(gateway, hold, 502, None)
                return error_answer(502, "The image service could not be reached: "
                                    f"{gateway.upstream.scrub_text(exc.message)}",
                                    "err_bad_gateway")  # fmt: skip
            finally:
                gateway.queue.release(ticket)
            if again:
                continue  # wait in the queue with everyone else, then go again
            payload = _json_or_none(reply.body)  # parsed once: for the cost and the gallery
            cost = _reported_micro(payload)
            if 200 <= reply.status < 300:
                if cost is None:
                    cost = hold.estimate_micro  # paid for, as far as anyone can tell
                else:
                    gateway.note_price(cost)
            _finish(gateway, hold, reply.status, cost)
            headers = {k: reply.headers[k] for k in PASSED_HEADERS if k in reply.headers}
            if reply.status in ACCOUNT_REFUSALS:
                return _refused(gateway, reply, headers)
            if 200 <= reply.status < 300:
                gateway.note_accepted()
            content_type = reply.headers.get("content-type", "application/json")
            answer = Answer(reply.status, reply.body, content_type, headers)
            if 200 <= reply.status < 300 and hold.row_id is not None:
                answer.after_sent = gateway.gallery.promise(hold.row_id, payload)
            return answer
        raise AssertionError("unreachable: the last round always answers")
    except Exception:
        # A fault of ours after the request left: its outcome is unknown, as after a crash.
        if hold.row_id is not None:
            _finish(gateway, hold, 500, hold.estimate_micro)
        raise
    finally:
        gateway.ledger.drop(hold)  # a no-op once sent


def _refused(gateway: Gateway, reply: transport.Reply, headers: dict[str, str]) -> Answer:
    """The service refused the teacher's key or account. Passed on as it came, a student's
    client would report their own token as wrong (401/403) or their class budget as spent
    (402); so the answer keeps the status (the client does not retry it) and says whose
    problem it is, and the teacher's dashboard shows it."""
    error = transport.error_for_status(reply)  # from the answer with the key scrubbed
    said = " ".join(error.message.split())[:REFUSAL_SHOWN_CHARS]  # one line in log and panel
    gateway.note_refused(reply.status, said)
    answer = error_answer(reply.status, f"The image service refused the class's key (HTTP "
                          f"{reply.status}: {said}): not your token; tell your teacher",
                          REFUSED_KIND, request_id=error.request_id)  # fmt: skip
    answer.headers.update(headers)  # the service's request id, for the teacher's report
    return answer


def _mark_sent(gateway: Gateway, hold: Hold, fields: dict[str, Any]) -> None:
    """Commit the request as sent (its estimate reserved durably), once, right before it is."""
    if hold.row_id is None:
        gateway.ledger.mark_sent(hold, fields)


def _pause_for_429(gateway: Gateway, headers: Any, round_number: int) -> bool:
    """Close the class's gate for as long as the service asked; False if that is too long."""
    delay_s = retry.parse_retry_after(headers, now_wall=time.time())
    if delay_s is not None and delay_s > retry.RETRY_AFTER_MAX_S:
        return False
    gateway.queue.pause_for(delay_s if delay_s is not None else retry.backoff_delay(round_number))
    return True


def _finish(gateway: Gateway, hold: Hold, status: int, cost_micro: int | None) -> None:
    if hold.row_id is not None:
        gateway.ledger.finish(hold, http_status=status, cost_micro=cost_micro)


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _reported_micro(payload: object) -> int | None:
    """The answer's `meta.usage.usd_spent` in micro-dollars, or None when it reports none."""
    try:
        usd = payload["meta"]["usage"]["usd_spent"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not 0 <= usd < 1e6:
        return None
    return to_micro(float(usd))
