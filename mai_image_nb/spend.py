"""Spend tracking and the budget cap: reserve before sending, settle from what was reported.

Reservations are taken under one lock, so concurrent calls can never together pass
the budget: a thread that would pass it is refused before it sends anything.
"""

from __future__ import annotations

import threading

from .errors import BudgetExceededError, ValidationError

__all__ = ["Reservation", "SpendTracker"]

_EPSILON_USD = 1e-9  # float sums of reported costs must not refuse an exact fit


class SpendTracker:
    """Thread-safe running total of reported cost, with reservations against a cap."""

    def __init__(self, budget_usd: float | None) -> None:
        self._lock = threading.Lock()
        self._spent_usd = 0.0
        self._reserved_usd = 0.0
        self.budget_usd: float | None = None
        self.set_budget(budget_usd)

    def set_budget(self, budget_usd: float | None) -> None:
        """Change the cap; it applies from the next reservation on.

        Raises:
            ValidationError: not a number >= 0 (nor None).
        """
        given: object = budget_usd  # checked at run time: notebooks pass anything
        if given is not None and (
            isinstance(given, bool) or not isinstance(given, (int, float)) or not given >= 0
        ):
            raise ValidationError("budget_usd", budget_usd, "a number >= 0, or None for no cap")
        with self._lock:
            self.budget_usd = None if budget_usd is None else float(budget_usd)

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent_usd

    def check(self, estimate_usd: float) -> None:
        """Raise if `estimate_usd` more would pass the budget (reserves nothing).

        Raises:
            BudgetExceededError: saying the budget, the spend and the estimate.
        """
        with self._lock:
            self._check_locked(estimate_usd)

    def reserve(self, estimate_usd: float) -> Reservation:
        """Set `estimate_usd` aside for one request, until it is settled or released.

        Raises:
            BudgetExceededError: the reservation would pass the budget.
        """
        with self._lock:
            self._check_locked(estimate_usd)
            self._reserved_usd += estimate_usd
        return Reservation(self, estimate_usd)

    def _close(self, reservation_usd: float, usd_spent: float) -> None:
        with self._lock:
            self._reserved_usd = max(0.0, self._reserved_usd - reservation_usd)
            self._spent_usd += usd_spent

    def _passes_locked(self, estimate_usd: float) -> bool:
        if self.budget_usd is None:
            return False
        committed = self._spent_usd + self._reserved_usd
        return committed + estimate_usd > self.budget_usd + _EPSILON_USD

    def _check_locked(self, estimate_usd: float) -> None:
        if self._passes_locked(estimate_usd):
            assert self.budget_usd is not None
            raise BudgetExceededError(
                budget_usd=self.budget_usd,
                spent_usd=self._spent_usd + self._reserved_usd,
                estimate_usd=estimate_usd,
            )


class Reservation:
    """Money set aside for one request: settled once with the reported cost, or released."""

    def __init__(self, tracker: SpendTracker, usd: float) -> None:
        self._tracker = tracker
        self.usd = usd
        self._open = True
        self._lock = threading.Lock()

    def settle(self, usd_spent: float) -> None:
        """Replace the reservation by what the service reported, in one step (never both)."""
        self._finish(usd_spent)

    def charge(self, usd_spent: float | None) -> None:
        """Settle with the reported cost, or at the reserved estimate when none was reported.

        An answer that reports no cost was paid for as far as the client can tell, so
        requests sent × estimate never passes the budget.
        """
        self._finish(self.usd if usd_spent is None else usd_spent)

    def release(self) -> None:
        """Give the reservation back (nothing was reported); a no-op once settled."""
        self._finish(0.0)

    def _finish(self, usd_spent: float) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
        self._tracker._close(self.usd, usd_spent)
