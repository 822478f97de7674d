"""The exceptions this package raises; nothing else leaves it.

    MaiImageError
    ├── ValidationError (also ValueError)   bad input, found before any request
    ├── APIStatusError                      an HTTP error answer, after retries
    │   ├── AuthenticationError             401/403, or no key with offline=False
    │   └── RateLimitError                  429 after retries, or Retry-After > 120 s
    ├── APIConnectionError                  the network failed, after retries
    │   └── APITimeoutError                 ... by timing out
    ├── ResponseError                       a 2xx answer without a usable image
    ├── BudgetExceededError                 the call would pass budget_usd
    │   └── ServerBudgetError               ... HTTP 402: a budget the server keeps
    └── CancelledError                      skipped because the run was cancelled

Errors hold plain data only (never a `requests` object, which carries the
Authorization header), so they are safe to print, log and pickle.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BudgetExceededError",
    "CancelledError",
    "MaiImageError",
    "RateLimitError",
    "ResponseError",
    "ValidationError",
]

_MAX_VALUE_REPR = 80


def _short_repr(value: object) -> str:
    """`repr(value)` cut to a readable length (a 4001-character prompt stays one line)."""
    text = repr(value)
    if len(text) > _MAX_VALUE_REPR:
        text = text[: _MAX_VALUE_REPR - 5] + "…" + text[-4:]
    return text


class MaiImageError(Exception):
    """Base class of every error this package raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors below would otherwise break pickling.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[MaiImageError], state: dict[str, object]) -> MaiImageError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ValidationError(MaiImageError, ValueError):
    """Bad input, found before any request is sent."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field}={_short_repr(value)} is not allowed; {field} must be {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed


class APIStatusError(MaiImageError):
    """The service answered with an HTTP error (after any retries)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        request_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.kind = kind

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.insert(0, f"HTTP {self.status_code}:")
        if self.kind:
            parts.append(f"[{self.kind}]")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class AuthenticationError(APIStatusError):
    """The key was refused (401), the account has no credits (403), or no key was found."""


class RateLimitError(APIStatusError):
    """Too many requests: 429 after every retry, or a Retry-After too long to wait."""


class APIConnectionError(MaiImageError):
    """The service could not be reached (after any retries)."""


class APITimeoutError(APIConnectionError):
    """The service did not answer within the timeout (after any retries)."""


class ResponseError(MaiImageError):
    """A 2xx answer that holds no usable image. Never retried: it may have been charged."""


class BudgetExceededError(MaiImageError):
    """The call would pass the client's `budget_usd`."""

    def __init__(self, *, budget_usd: float, spent_usd: float, estimate_usd: float) -> None:
        super().__init__(
            f"budget of ${budget_usd:.4f} would be passed: ${spent_usd:.4f} spent or reserved, "
            f"this needs about ${estimate_usd:.4f} more"
        )
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd


class ServerBudgetError(BudgetExceededError, APIStatusError):
    """HTTP 402: a budget the server keeps (a class gateway's per-student budget, a spend
    limit) is used up. Carries the server's message and status; never retried.

    The numbers are the server's to say (they are in its message): `budget_usd`,
    `spent_usd` and `estimate_usd` are NaN here.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        request_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        APIStatusError.__init__(
            self, message, status_code=status_code, request_id=request_id, kind=kind
        )
        self.budget_usd = self.spent_usd = self.estimate_usd = float("nan")


class CancelledError(MaiImageError):
    """Skipped: the run was cancelled before this request was sent."""

    def __init__(self, message: str = "cancelled before it was sent") -> None:
        super().__init__(message)
