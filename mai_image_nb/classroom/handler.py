"""The gateway's HTTP side: read the body, check the token, route, write the answer.

Bodies are read before anything is answered (up to a drain limit), so a client whose body
is refused sees the refusal rather than a reset connection. No request header of a
student's is ever passed upstream; no token is ever logged or echoed.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from mai_image_nb._serving import RoutingHandler

from .forward import Answer, error_answer, generate, json_answer
from .ledger import Student
from .terms import LedgerError, check_budget, hash_token, to_usd

if TYPE_CHECKING:
    from .server import Gateway, GatewayHTTPServer

__all__ = ["DRAIN_LIMIT_BYTES", "MAX_BODY_BYTES", "Handler"]

log = logging.getLogger("mai_image_nb.classroom")

MAX_BODY_BYTES = 64 * 1024  # a prompt is at most 4000 characters: 64 KiB is generous
DRAIN_LIMIT_BYTES = 4 * 1024 * 1024  # read this much of a refused body, so the 413 arrives
IDLE_TIMEOUT_S = 120.0
GENERATIONS_PATH = "/v1/images/generations"
GALLERY_LIMIT_MAX = 100
_STUDENT_ACTION = re.compile(r"^/classroom/students/([^/]{1,200})/(budget|revoke)$")
_PREVIEW = re.compile(r"^/classroom/gallery/(\d{1,18})\.png$")
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class Handler(RoutingHandler):
    """One connection's requests."""

    server_version = "mai-image-classroom/1.0"
    timeout = IDLE_TIMEOUT_S
    server: GatewayHTTPServer

    def dispatch(self) -> None:
        gateway = self.server.gateway
        with gateway.busy():
            answer: Answer | None = None
            try:
                raw = self._read_body()
                answer = self._route(gateway, raw) if isinstance(raw, bytes) else raw
                self._send(answer)
            except _CLIENT_GONE as exc:
                log.debug("a client went away: %s", type(exc).__name__)
                self.close_connection = True
            except Exception as exc:  # noqa: BLE001 - answer, log (type only), keep serving
                log.error("classroom gateway: a request failed: %s", type(exc).__name__)
                self.close_connection = True
                self._send(error_answer(500, "The class gateway failed; try again",
                                        "err_internal"))  # fmt: skip
            finally:
                if answer is not None and answer.after_sent is not None:
                    answer.after_sent()  # the answer is out (or its student gone)

    # -- body ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes | Answer:
        """The body, or the answer refusing it (413/400) after draining what is sane."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_text = (self.headers.get("Content-Length") or "0").strip()
        if not length_text.isdigit():
            self.close_connection = True
            return error_answer(400, "Content-Length is not a number", "err_validation")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self._drain(length)
            return error_answer(
                413, f"Request body too large: {length:,} bytes; the limit is "
                f"{MAX_BODY_BYTES:,}", "err_payload_too_large",
            )  # fmt: skip
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        left = min(length, DRAIN_LIMIT_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 64 * 1024))
            if not chunk:
                break
            left -= len(chunk)
        if length > DRAIN_LIMIT_BYTES:
            self.close_connection = True

    def _read_chunked(self) -> bytes | Answer:
        parts, total = [], 0
        while True:
            size_text = self.rfile.readline(1024).split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                self.close_connection = True
                return error_answer(400, "Malformed chunked body", "err_validation")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                self._drain(size)
                return error_answer(413, "Request body too large", "err_payload_too_large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    # -- who is asking ------------------------------------------------------------------------

    def _bearer(self) -> str:
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def _is_admin(self, gateway: Gateway) -> bool:
        token = self._bearer()
        return bool(token) and hmac.compare_digest(hash_token(token), gateway.admin_hash)

    def _student(self, gateway: Gateway) -> Student | Answer:
        token = self._bearer()
        student = gateway.ledger.student_for_token(token) if token else None
        if student is None:
            return error_answer(401, "Unknown class token: send 'Authorization: Bearer <the "
                                "token your teacher gave you>'", "err_unauthorized")  # fmt: skip
        if student.revoked:
            return error_answer(401, "This class token was revoked by the teacher",
                                "err_unauthorized")  # fmt: skip
        return student

    # -- routes -------------------------------------------------------------------------------

    def _route(self, gateway: Gateway, raw: bytes) -> Answer:
        url = urlsplit(self.path)
        path, method = url.path, self.command
        prefix = gateway.path_prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix) :] or "/"
        if path == GENERATIONS_PATH:
            if method != "POST":
                return _not_allowed(method, path, "POST")
            who = self._student(gateway)
            return who if isinstance(who, Answer) else generate(gateway, who, raw)
        if path == "/classroom/me":
            if method != "GET":
                return _not_allowed(method, path, "GET")
            who = self._student(gateway)
            return who if isinstance(who, Answer) else _me(gateway, who)
        if path.startswith("/classroom/"):
            if not self._is_admin(gateway):
                if self._bearer() and gateway.ledger.student_for_token(self._bearer()):
                    return error_answer(403, "Only the teacher may do this", "err_forbidden")
                return error_answer(401, "The teacher's admin token is needed",
                                    "err_unauthorized")  # fmt: skip
            try:
                return _admin(gateway, method, path, url.query, raw)
            except LedgerError as exc:
                return error_answer(400, str(exc), "err_validation")
        return error_answer(404, f"Cannot {method} {path}", "err_not_found")

    def _send(self, answer: Answer) -> None:
        """Status line, headers and body in one write (one packet for a small answer)."""
        self.log_request(answer.status)
        phrase = self.responses.get(answer.status, ("",))[0]
        headers = {
            "Server": self.version_string(),
            "Date": self.date_time_string(),
            "Content-Type": answer.content_type,
            "Content-Length": str(len(answer.body)),
            "Cache-Control": "no-store",
            **answer.headers,
        }
        if self.close_connection:
            headers["Connection"] = "close"
        head = f"{self.protocol_version} {answer.status} {phrase}\r\n" + "".join(
            f"{name}: {_one_line(value)}\r\n" for name, value in headers.items()
        )
        body = answer.body if self.command != "HEAD" else b""
        self.wfile.write(head.encode("latin-1", "replace") + b"\r\n" + body)
        self.wfile.flush()


def _one_line(value: str) -> str:
    """A header value as one line (a value passed on from the service cannot add headers)."""
    return value.replace("\r", " ").replace("\n", " ")


def _not_allowed(method: str, path: str, allowed: str) -> Answer:
    answer = error_answer(405, f"Cannot {method} {path}", "err_method_not_allowed")
    answer.headers["Allow"] = allowed
    return answer


def _me(gateway: Gateway, student: Student) -> Answer:
    row = next(r for r in gateway.ledger.status() if r["name"] == student.name)
    left = max(0.0, row["budget_usd"] - row["spent_usd"] - row["reserved_usd"])
    return json_answer(200, {
        "name": row["name"], "budget_usd": row["budget_usd"], "spent_usd": row["spent_usd"],
        "reserved_usd": row["reserved_usd"], "left_usd": round(left, 6), "images": row["images"],
    })  # fmt: skip


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise LedgerError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise LedgerError("the body must be a JSON object")
    return body


def _admin(gateway: Gateway, method: str, path: str, query: str, raw: bytes) -> Answer:
    ledger = gateway.ledger
    if path == "/classroom/students":
        if method == "GET":
            return json_answer(200, ledger.status())
        if method == "POST":
            body = _json_object(raw)
            budget = body.get("budget_usd")
            micro = gateway.default_budget_micro if budget is None else check_budget(budget)
            token = gateway.roster.add_one(body.get("name"), micro)
            made = ledger.student_for_token(token)
            assert made is not None
            return json_answer(201, {"name": made.name, "token": token})
        return _not_allowed(method, path, "GET, POST")
    if match := _STUDENT_ACTION.match(path):
        if method != "POST":
            return _not_allowed(method, path, "POST")
        name, action = unquote(match.group(1)), match.group(2)
        if action == "budget":
            ledger.set_budget(name, check_budget(_json_object(raw).get("budget_usd")))
        else:
            ledger.revoke(name)
        student = ledger.student(name)
        return json_answer(200, {"name": student.name, "budget_usd": to_usd(student.budget_micro),
                                 "revoked": student.revoked})  # fmt: skip
    if path == "/classroom/state" and method == "GET":
        return json_answer(200, gateway.state())
    if path == "/classroom/gallery" and method == "GET":
        limit_text = parse_qs(query).get("limit", ["24"])[0]
        limit = min(GALLERY_LIMIT_MAX, int(limit_text)) if limit_text.isdigit() else 24
        items: list[dict[str, Any]] = []
        for item in ledger.images(limit * 2):  # some answers' images may not be kept
            if len(items) < limit and gateway.gallery.find(item["id"]) is not None:
                item["preview"] = f"/classroom/gallery/{item.pop('id')}.png"
                items.append(item)
        return json_answer(200, items)
    if (match := _PREVIEW.match(path)) and method == "GET":
        data = gateway.gallery.preview(int(match.group(1)))
        if data is None:
            return error_answer(404, "No such image in the class gallery", "err_not_found")
        return Answer(200, data, "image/png")
    return error_answer(404, f"Cannot {method} {path}", "err_not_found")
