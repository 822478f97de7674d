"""Adding students: a fresh token each, written to `tokens.csv` before the ledger learns it.

`tokens.csv` is the only place a token is kept in the clear (the ledger keeps its hash),
so it is written first: a crash in between leaves a row the next start adds to the ledger
(`reconcile`), never a token nobody can hand out.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .files import new_token, read_tokens, write_tokens
from .ledger import Ledger
from .terms import LedgerError, check_name

__all__ = ["Roster"]


class Roster:
    """The class list: names, their tokens (in the folder) and their budgets (in the ledger)."""

    def __init__(self, folder: Path, ledger: Ledger) -> None:
        self.folder = folder
        self.ledger = ledger
        self._lock = threading.Lock()

    def reconcile(self, budget_micro: int) -> None:
        """Add to the ledger every student of `tokens.csv` it does not know (after a crash)."""
        with self._lock:
            known = set(self.ledger.names())
            for name, token in read_tokens(self.folder).items():
                if name not in known:
                    self.ledger.add_student(name, token, budget_micro)

    def add(self, names: list[str], budget_micro: int) -> dict[str, str]:
        """name -> token for the names not yet in the class; existing ones are left alone.

        Raises:
            LedgerError: a name is not allowed (nothing is added then).
        """
        checked = [check_name(name) for name in names]
        with self._lock:
            known = set(self.ledger.names())
            tokens = read_tokens(self.folder)
            new: dict[str, str] = {}
            for name in checked:
                if name not in known and name not in new:
                    new[name] = new_token()
            if not new:
                return {}
            write_tokens(self.folder, {**tokens, **new})
            for name, token in new.items():
                self.ledger.add_student(name, token, budget_micro)
        return new

    def add_one(self, name: object, budget_micro: int) -> str:
        """Add one new student; their token.

        Raises:
            LedgerError: the name is taken or not allowed.
        """
        made = self.add([check_name(name)], budget_micro)
        if not made:
            raise LedgerError(f"there is already a student called {check_name(name)!r}")
        return next(iter(made.values()))
