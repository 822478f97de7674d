"""Who goes upstream next: caps, round-robin across students, and one back-off gate.

At most `max_inflight` requests are upstream at once and at most `per_student` of one
student's. Waiting requests are granted in turns across students (one each, in the order
they started waiting), so one student's grid of 30 does not hold another's single image
behind it. A 429 closes the gate for everyone until its time is up; waiting requests stay
in the queue meanwhile instead of each retrying on its own. Each waiting request sleeps on
its own condition, so a grant wakes only the request it lets go, not the whole class.
"""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["FairQueue", "QueueClosedError", "Ticket"]


class QueueClosedError(Exception):
    """The gateway is stopping: this request will not be sent."""


class Ticket:
    """One request's place in the queue; `granted` once it may go upstream."""

    __slots__ = ("granted", "student", "wake")

    def __init__(self, student: str, lock: threading.Lock) -> None:
        self.student = student
        self.granted = False
        self.wake = threading.Condition(lock)  # only this ticket's thread waits on it


class FairQueue:
    """Grants upstream slots fairly; every method is thread-safe."""

    def __init__(self, *, max_inflight: int, per_student: int) -> None:
        if max_inflight < 1 or per_student < 1:
            raise ValueError("max_inflight and per_student must be at least 1")
        self.max_inflight = max_inflight
        self.per_student = per_student
        self._lock = threading.Lock()
        self._waiting: dict[str, deque[Ticket]] = {}
        self._turns: deque[str] = deque()  # students with waiting tickets, next turn first
        self._inflight: dict[str, int] = {}
        self._total_inflight = 0
        self._open_at = 0.0  # time.monotonic() when the gate opens again
        self._closed = False
        self.peak_inflight = 0  # the most requests upstream at once, so far

    # -- the gate -----------------------------------------------------------------------------

    def pause_for(self, delay_s: float) -> None:
        """Hold every upstream send back `delay_s` from now (never shortens a longer hold)."""
        with self._lock:
            self._open_at = max(self._open_at, time.monotonic() + delay_s)
            self._wake_all_locked()  # each waiting ticket waits again, until the gate opens

    # -- slots --------------------------------------------------------------------------------

    def acquire(self, student: str, *, first: bool = False) -> Ticket:
        """Wait for a slot; `first` puts the ticket at the head of its student's line.

        Raises:
            QueueClosedError: the queue was closed while waiting.
        """
        ticket = Ticket(student, self._lock)
        with self._lock:
            if self._closed:
                raise QueueClosedError()
            line = self._waiting.get(student)
            if line is None:
                line = self._waiting[student] = deque()
                self._turns.append(student)
            if first:
                line.appendleft(ticket)
            else:
                line.append(ticket)
            self._grant_locked()
            while not ticket.granted:
                if self._closed:
                    self._forget_locked(ticket)
                    raise QueueClosedError()
                wait_s = self._open_at - time.monotonic()
                ticket.wake.wait(wait_s if wait_s > 0 else None)
                self._grant_locked()
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Give the ticket's slot back (once the upstream answered or failed)."""
        with self._lock:
            if not ticket.granted:
                return
            ticket.granted = False
            self._total_inflight -= 1
            left = self._inflight[ticket.student] - 1
            if left:
                self._inflight[ticket.student] = left
            else:
                del self._inflight[ticket.student]
            self._grant_locked()

    def close(self) -> None:
        """Refuse new tickets and wake every waiting one (each raises QueueClosedError)."""
        with self._lock:
            self._closed = True
            self._wake_all_locked()

    def counts(self) -> tuple[int, int]:
        """(requests upstream, requests waiting)."""
        with self._lock:
            return self._total_inflight, sum(len(line) for line in self._waiting.values())

    # -- inside the lock ----------------------------------------------------------------------

    def _grant_locked(self) -> None:
        while (
            self._turns
            and self._total_inflight < self.max_inflight
            and self._open_at <= time.monotonic()
        ):
            for _ in range(len(self._turns)):
                student = self._turns[0]
                if self._inflight.get(student, 0) < self.per_student:
                    break
                self._turns.rotate(-1)
            else:
                break  # every waiting student is at their own cap
            self._turns.popleft()
            line = self._waiting[student]
            ticket = line.popleft()
            if line:
                self._turns.append(student)  # their next request waits for everyone's turn
            else:
                del self._waiting[student]
            ticket.granted = True
            ticket.wake.notify()
            self._total_inflight += 1
            self._inflight[student] = self._inflight.get(student, 0) + 1
            self.peak_inflight = max(self.peak_inflight, self._total_inflight)

    def _wake_all_locked(self) -> None:
        for line in self._waiting.values():
            for ticket in line:
                ticket.wake.notify()

    def _forget_locked(self, ticket: Ticket) -> None:
        line = self._waiting.get(ticket.student)
        if line is None:
            return
        try:
            line.remove(ticket)
        except ValueError:
            return
        if not line:
            del self._waiting[ticket.student]
            self._turns.remove(ticket.student)
