"""The ledger's terms: money in micro-dollars, token digests, and what names and budgets may be.

Pure functions, standard library only.
"""

from __future__ import annotations

import hashlib
import time

__all__ = [
    "MICRO",
    "NAME_MAX_CHARS",
    "LedgerError",
    "check_budget",
    "check_name",
    "hash_token",
    "now_iso",
    "to_micro",
    "to_usd",
]

MICRO = 1_000_000  # micro-dollars per dollar
NAME_MAX_CHARS = 64


class LedgerError(Exception):
    """A ledger operation was refused (unknown student, bad name or budget)."""


def to_micro(usd: float) -> int:
    """Dollars as whole micro-dollars (rounded half away from zero, as money is)."""
    return round(usd * MICRO)


def to_usd(micro: int) -> float:
    return micro / MICRO


def hash_token(token: str) -> str:
    """sha256 of a token, hex: what the ledger keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def now_iso() -> str:
    """The time now in UTC, to the second: 2026-12-01T09:30:00+00:00."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def check_name(name: object) -> str:
    """A student's name: 1-64 printable characters, no commas or line breaks (it goes in a CSV).

    Raises:
        LedgerError: naming what is wrong.
    """
    if not isinstance(name, str) or not name.strip():
        raise LedgerError(f"a student's name must be non-empty text, got {name!r}")
    name = name.strip()
    if len(name) > NAME_MAX_CHARS:
        raise LedgerError(f"a student's name is at most {NAME_MAX_CHARS} characters")
    if any(not ch.isprintable() or ch in ',"/\\' for ch in name):
        raise LedgerError(
            f"a student's name may not hold control characters, commas, quotes or slashes: {name!r}"
        )
    return name


def check_budget(budget_usd: object) -> int:
    """A budget in dollars (a number >= 0) as micro-dollars.

    Raises:
        LedgerError: not a finite number >= 0.
    """
    if (
        isinstance(budget_usd, bool)
        or not isinstance(budget_usd, (int, float))
        or not 0 <= budget_usd < 1e9
    ):
        raise LedgerError(f"budget_usd must be a number >= 0, got {budget_usd!r}")
    return to_micro(float(budget_usd))
