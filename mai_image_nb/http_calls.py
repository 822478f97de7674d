"""One client's HTTP calls with retries: the POST of a generation and the image download.

`transport.py` makes one attempt; this module decides whether to try again, waits
through the client's clock and back-off gate, and builds the one error to raise once
the attempts are spent (the attempt count is in its message from the start).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from . import retry, transport
from .errors import APIConnectionError, APITimeoutError, CancelledError, ResponseError

__all__ = ["Caller"]

log = logging.getLogger(__name__)


def _attempts_text(attempts: int) -> str:
    return f"{attempts} attempt{'s' if attempts > 1 else ''}"


class Caller:
    """Sessions, key, clock and back-off gate of one client, and the retry loops over them."""

    def __init__(
        self,
        *,
        auth: transport.BearerAuth | None,
        clock: retry.Clock,
        rand: Callable[[], float],
        max_idle_sessions: int,
    ) -> None:
        self.auth = auth
        self.sessions = transport.SessionPool(max_idle=max_idle_sessions)
        self.use_clock(clock, rand)

    def use_clock(self, clock: retry.Clock, rand: Callable[[], float]) -> None:
        """Where waits go (tests swap in a clock that records them)."""
        self.clock = clock
        self.rand = rand
        self.gate = retry.BackoffGate(clock)

    def close(self) -> None:
        self.sessions.close()

    def post(
        self,
        url: str,
        body: dict[str, Any],
        *,
        cancel: threading.Event | None,
        max_retries: int,
        timeout_s: float,
    ) -> transport.Reply:
        """POST until a 2xx answer, a final error answer, or the attempts are spent.

        Raises:
            APIStatusError (and subclasses): an error answer not worth retrying, or the last.
            APIConnectionError / APITimeoutError: no answer after every attempt.
            CancelledError: `cancel` was set before an attempt was sent or during a wait.
            ResponseError: a 2xx answer over the size cap.
        """
        attempts = 1 + max_retries
        last: transport.Reply | transport.NetworkFailure | None = None
        for attempt in range(attempts):
            self.gate.wait_open(cancel)
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            log.debug("POST %s (attempt %d of %d)", url, attempt + 1, attempts)
            with self.sessions.session("api") as session:
                last = transport.post_json(session, url, body, auth=self.auth, timeout_s=timeout_s)
            if isinstance(last, transport.NetworkFailure):
                delay_s = retry.backoff_delay(attempt, rand=self.rand)
            else:
                if 200 <= last.status < 300:
                    return last
                if not retry.is_retryable_status(last.status):
                    raise transport.error_for_status(last)
                retry_after_s = retry.parse_retry_after(last.headers, now_wall=self.clock.wall())
                if retry_after_s is not None and retry_after_s > retry.RETRY_AFTER_MAX_S:
                    raise transport.error_for_status(
                        last,
                        f" (the service asked to wait {retry_after_s:.0f} s, "
                        f"more than {retry.RETRY_AFTER_MAX_S:.0f} s)",
                    )
                if retry_after_s is not None:
                    delay_s = retry_after_s
                else:
                    delay_s = retry.backoff_delay(attempt, rand=self.rand)
                if last.status == 429 or retry_after_s is not None:
                    self.gate.close_for(delay_s)
            if attempt + 1 == attempts:
                break
            log.debug("retrying in %.2f s after %s", delay_s, _summary(last))
            if self.clock.wait(delay_s, cancel):
                raise CancelledError("cancelled while waiting to retry")
        assert last is not None
        if isinstance(last, transport.Reply):
            raise transport.error_for_status(last)
        host = urlsplit(url).netloc
        text = f"could not reach {host} after {_attempts_text(attempts)}: "
        if last.kind == "timeout":
            raise APITimeoutError(text + f"timed out after {timeout_s:g} s: {last.detail}")
        raise APIConnectionError(text + f"connection failed: {last.detail}")

    def download(self, url: str, *, max_retries: int, timeout_s: float) -> bytes:
        """GET the answer's image without the key; retried on network errors and 5xx.

        The image is already paid for, so a cancel does not abandon it.

        Raises:
            ResponseError: the image could not be fetched, or is over the size cap.
        """
        host = urlsplit(url).netloc
        attempts = 1 + max_retries
        problem = ""
        for attempt in range(attempts):
            with self.sessions.session("download") as session:
                reply = transport.fetch_image(session, url, timeout_s=timeout_s)
            if isinstance(reply, transport.NetworkFailure):
                problem = reply.detail
                if reply.kind == "redirects":
                    break
            else:
                if 200 <= reply.status < 300:
                    return reply.body
                problem = f"HTTP {reply.status}"
                if not retry.is_retryable_status(reply.status):
                    break
            if attempt + 1 < attempts:
                self.clock.wait(retry.backoff_delay(attempt, rand=self.rand), None)
        raise ResponseError(
            f"the image could not be fetched from {host} "
            f"(after {_attempts_text(attempt + 1)}): {problem}"
        )


def _summary(outcome: transport.Reply | transport.NetworkFailure) -> str:
    if isinstance(outcome, transport.NetworkFailure):
        return f"{outcome.kind}: {outcome.detail}"
    return f"HTTP {outcome.status}"
