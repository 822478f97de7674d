"""spend.py: reserve before sending, settle once with the reported cost, never pass the budget."""

from __future__ import annotations

import threading

import pytest

from mai_image_nb.errors import BudgetExceededError, ValidationError
from mai_image_nb.spend import SpendTracker

JOIN_S = 10.0


def test_no_budget_never_refuses() -> None:
    tracker = SpendTracker(None)
    reservations = [tracker.reserve(1000.0) for _ in range(5)]
    tracker.check(1e12)
    for reservation in reservations:
        reservation.settle(2.0)
    assert tracker.spent_usd == pytest.approx(10.0)


def test_reserve_counts_against_the_budget_until_settled_or_released() -> None:
    tracker = SpendTracker(1.0)
    first = tracker.reserve(0.6)
    with pytest.raises(BudgetExceededError):
        tracker.reserve(0.6)  # 0.6 reserved + 0.6 > 1.0
    first.release()
    second = tracker.reserve(0.6)
    second.settle(0.25)  # the service reported less than the estimate
    assert tracker.spent_usd == pytest.approx(0.25)
    tracker.reserve(0.75).settle(0.75)  # an exact fit is allowed
    assert tracker.spent_usd == pytest.approx(1.0)
    with pytest.raises(BudgetExceededError):
        tracker.check(0.01)


def test_a_reservation_closes_once() -> None:
    tracker = SpendTracker(None)
    reservation = tracker.reserve(0.5)
    reservation.settle(0.5)
    reservation.settle(0.5)
    reservation.release()
    assert tracker.spent_usd == pytest.approx(0.5)
    tracker.reserve(0.5).release()
    assert tracker.spent_usd == pytest.approx(0.5)


def test_check_reserves_nothing() -> None:
    tracker = SpendTracker(0.1)
    for _ in range(10):
        tracker.check(0.1)
    tracker.reserve(0.1)


def test_the_error_names_budget_spend_and_estimate() -> None:
    tracker = SpendTracker(0.1)
    tracker.reserve(0.08).settle(0.08)
    with pytest.raises(BudgetExceededError) as info:
        tracker.reserve(0.0627)
    text = str(info.value)
    assert "0.1" in text and "0.08" in text and "0.0627" in text


def test_float_sums_do_not_refuse_an_exact_fit() -> None:
    tracker = SpendTracker(0.3)
    for _ in range(3):
        tracker.reserve(0.1).settle(0.1)  # 0.1 + 0.1 + 0.1 > 0.3 in floats
    assert tracker.spent_usd == pytest.approx(0.3)


def test_a_new_budget_applies_to_the_next_reservation() -> None:
    tracker = SpendTracker(0.0)
    with pytest.raises(BudgetExceededError):
        tracker.reserve(0.01)
    tracker.set_budget(1)
    assert tracker.budget_usd == 1.0
    held = tracker.reserve(0.9)
    tracker.set_budget(0.5)  # below what is held: later reservations are refused
    with pytest.raises(BudgetExceededError):
        tracker.reserve(0.01)
    held.release()
    tracker.reserve(0.5)


@pytest.mark.parametrize(
    "budget",
    [
        pytest.param(-0.01, id="negative"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(True, id="bool"),
        pytest.param("5", id="text"),
    ],
)
def test_bad_budgets_are_refused_naming_the_field(budget: object) -> None:
    with pytest.raises(ValidationError, match="budget_usd"):
        SpendTracker(budget)  # type: ignore[arg-type]
    tracker = SpendTracker(1.0)
    with pytest.raises(ValidationError, match="budget_usd"):
        tracker.set_budget(budget)  # type: ignore[arg-type]
    assert tracker.budget_usd == 1.0


@pytest.mark.parametrize("threads", [2, 16])
def test_concurrent_reservations_never_pass_the_budget(threads: int) -> None:
    """Threads released at once each reserve, hold, then settle: exactly budget/estimate get in."""
    tracker = SpendTracker(0.5)  # room for 5 at 0.1
    start = threading.Barrier(threads)
    held = threading.Barrier(threads)
    granted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        start.wait(JOIN_S)
        try:
            reservation = tracker.reserve(0.1)
        except BudgetExceededError:
            with lock:
                refused.append(index)
            held.wait(JOIN_S)
            return
        with lock:
            granted.append(index)
        held.wait(JOIN_S)  # every thread has asked before anyone settles
        reservation.settle(0.1)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(JOIN_S)
        assert not thread.is_alive()
    assert len(granted) == min(threads, 5)
    assert len(granted) + len(refused) == threads
    assert tracker.spent_usd == pytest.approx(0.1 * len(granted))
    assert tracker.spent_usd <= 0.5 + 1e-9
