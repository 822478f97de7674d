"""`Classroom`: a class folder and its gateway, from Python (the CLI uses it too).

Restarting with the same folder keeps every student, token and cent: the ledger is
reopened, requests a crash left open are settled at their estimate, and `tokens.csv`
rows the ledger missed are added back before anything is served.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from mai_image_nb.client import DEFAULT_BASE_URL, DEFAULT_USD_PER_IMAGE
from mai_image_nb.errors import AuthenticationError, ValidationError
from mai_image_nb.params import check_count

from .files import LEDGER_FILE, URL_FILE, FolderLock, load_or_make_admin_token, write_private
from .ledger import Ledger
from .roster import Roster
from .server import Gateway
from .terms import LedgerError, check_budget, to_micro
from .upstream import Upstream, header_safe

__all__ = ["Classroom"]

OFFLINE = "offline"


class Classroom:
    """A gateway that holds the teacher's key and keeps each student's budget.

    `upstream=None` is the provider's API, `"offline"` the bundled simulator, a URL another
    service speaking the same API. `api_key=None` reads `AIMLAPI_KEY` (not needed offline).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        upstream: str | None = None,
        api_key: str | None = None,
        budget_usd: float = 2.0,
        max_inflight: int = 16,
        per_student: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        check_count("max_inflight", max_inflight, minimum=1)
        check_count("per_student", per_student, minimum=1)
        try:
            check_budget(budget_usd)
        except LedgerError:
            raise ValidationError("budget_usd", budget_usd, "a number >= 0") from None
        check_count("port", port, minimum=0)
        if port > 65535:
            raise ValidationError("port", port, "a port number from 0 to 65535")
        given: object = upstream  # checked at run time: notebooks pass anything
        if not (
            given is None
            or given == OFFLINE
            or (isinstance(given, str) and given.startswith(("http://", "https://")))
        ):
            raise ValidationError("upstream", upstream, "None, 'offline' or an http(s) URL")
        self.folder = Path(folder)
        self.upstream = upstream
        self.budget_usd = float(budget_usd)
        self.max_inflight, self.per_student = max_inflight, per_student
        self.host, self.port = host, port
        self._api_key = api_key if api_key is not None else os.environ.get("AIMLAPI_KEY")
        if upstream != OFFLINE and not self._api_key:
            raise AuthenticationError(
                "the gateway needs the teacher's key: set AIMLAPI_KEY (or pass api_key=)",
                status_code=None,
            )
        if upstream != OFFLINE and not header_safe(self._api_key or ""):
            # The key itself is never shown; a stray space or newline is the usual cause.
            raise ValidationError("api_key", "<hidden>", "visible ASCII characters only, no "
                                  "spaces or line breaks (check AIMLAPI_KEY)")  # fmt: skip
        self.admin_token = ""
        self._gateway: Gateway | None = None
        self._simulator: Any = None
        self._ledger: Ledger | None = None
        self._roster: Roster | None = None
        self._lock: FolderLock | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, *, students: list[str] | None = None) -> Classroom:
        """Open the folder, recover the ledger, and serve (once). Returns self.

        `students` are added (new names only) before the URL is written to `<folder>/url`,
        so whoever waits for that file finds `tokens.csv` complete.
        """
        if self._gateway is not None:
            return self
        with contextlib.suppress(FileNotFoundError):
            (self.folder / URL_FILE).unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        lock = FolderLock(self.folder)
        lock.acquire()
        try:
            self.admin_token = load_or_make_admin_token(self.folder)
            ledger = Ledger(self.folder / LEDGER_FILE)
        except BaseException:
            lock.release()
            raise
        try:
            roster = Roster(self.folder, ledger)
            roster.reconcile(to_micro(self.budget_usd))
            base_url = self._upstream_url()
            upstream = Upstream(base_url, None if self.upstream == OFFLINE else self._api_key)
            self._gateway = Gateway(
                self.folder, ledger=ledger, roster=roster, upstream=upstream,
                admin_token=self.admin_token, default_price_usd=DEFAULT_USD_PER_IMAGE,
                default_budget_usd=self.budget_usd, max_inflight=self.max_inflight,
                per_student=self.per_student, host=self.host, port=self.port,
            )  # fmt: skip
        except BaseException:
            ledger.close()
            lock.release()
            if self._simulator is not None:
                self._simulator.close()
                self._simulator = None
            raise
        self._ledger, self._roster, self._lock = ledger, roster, lock
        if students:
            try:
                self.add_students(students)
            except BaseException:
                self.close()
                raise
        write_private(self.folder / URL_FILE, self.url + "\n", mode=0o644)
        return self

    def _upstream_url(self) -> str:
        if self.upstream == OFFLINE:
            from mai_image_nb.offline import OfflineServer

            # b64 answers: the students' clients need not reach the simulator themselves.
            self._simulator = OfflineServer(response_format="b64_json").start()
            return str(self._simulator.url)
        return self.upstream or DEFAULT_BASE_URL

    def close(self) -> None:
        """Stop serving: finish or release what is in flight, close the ledger (idempotent)."""
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            gateway.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._simulator is not None:
            self._simulator.close()
            self._simulator = None

    def __enter__(self) -> Classroom:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def __repr__(self) -> str:
        where = self._gateway.url if self._gateway is not None else "not serving"
        return f"<Classroom {str(self.folder)!r} {where}>"

    # -- the class ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The gateway's URL, `http://host:port` (after `start()`)."""
        return self._running().url

    @property
    def gateway(self) -> Gateway:
        """The running server (for tests and benchmarks: its queue, ledger and gallery)."""
        return self._running()

    def _running(self) -> Gateway:
        if self._gateway is None:
            raise RuntimeError("the classroom is not serving: call start() first")
        return self._gateway

    def add_students(self, names: list[str], budget_usd: float | None = None) -> dict[str, str]:
        """name -> token for the names new to the class (existing tokens never change).

        Raises:
            ValidationError: a name or the budget is not allowed (nothing is added).
        """
        if isinstance(names, (str, bytes)):
            raise ValidationError("names", names, "a list of names, not one string")
        gateway = self._running()
        if budget_usd is None:
            micro = gateway.default_budget_micro
        else:
            try:
                micro = check_budget(budget_usd)
            except LedgerError:
                raise ValidationError("budget_usd", budget_usd, "a number >= 0") from None
        try:
            return gateway.roster.add(list(names), micro)
        except LedgerError as exc:
            raise ValidationError("names", names, f"plain names ({exc})") from None

    def set_budget(self, name: str, budget_usd: float) -> None:
        """Give `name` a new budget (in dollars); applies to their next request.

        Raises:
            ValidationError: an unknown name, or a budget that is not a number >= 0.
        """
        ledger = self._known(name)
        try:
            micro = check_budget(budget_usd)
        except LedgerError:
            raise ValidationError("budget_usd", budget_usd, "a number >= 0") from None
        ledger.set_budget(name, micro)

    def revoke(self, name: str) -> None:
        """Refuse `name`'s token from now on (their spend stays in the books).

        Raises:
            ValidationError: an unknown name.
        """
        self._known(name).revoke(name)

    def _known(self, name: str) -> Ledger:
        ledger = self._running().ledger
        try:
            ledger.student(name)
        except LedgerError:
            raise ValidationError("name", name, "the name of a student in this class") from None
        return ledger

    def status(self) -> list[dict[str, Any]]:
        """Per student: name, budget_usd, spent_usd, images, errors, last_seen (ISO time)."""
        return self._running().ledger.status()
