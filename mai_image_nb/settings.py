"""Where a Client's key, server and history come from: arguments, then the environment.

Decisions made once at construction, sending nothing over the network: the key, URL and
mode are pure functions of the arguments and the environment; `open_history` opens (and may
create) the history's folder and SQLite file. The key is only ever handed on, never kept here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._userwarn import warn_user
from .errors import AuthenticationError, MaiImageError, ValidationError

if TYPE_CHECKING:
    from .history import History

__all__ = ["DEFAULT_BASE_URL", "normalise_base_url", "open_history", "resolve_connection"]

DEFAULT_BASE_URL = "https://api.aimlapi.com"


def normalise_base_url(base_url: str) -> str:
    """`base_url` without a trailing slash or `/v1`, checked to be a plain http(s) URL.

    Raises:
        ValidationError: not http(s), no host, or credentials in the URL.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("base_url", base_url, "an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # It would land in reprs, logs and the history; the key belongs in api_key.
        raise ValidationError(
            "base_url", "<a URL with credentials>", "a URL without user:password@ (use api_key)"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def resolve_connection(
    api_key: str | None, base_url: str | None, offline: bool | None
) -> tuple[str | None, str, bool]:
    """(key, base URL, offline) from the arguments, else AIMLAPI_KEY and AIMLAPI_BASE_URL.

    With `offline=None`, no key means the bundled simulator, unless the user named a server
    of their own (a class simulator started with `python -m mai_image_nb.offline`), which
    is then used without a key.

    Raises:
        ValidationError: `base_url` is not a plain http(s) URL.
        AuthenticationError: `offline=False` against the real API with no key.
    """
    key = api_key if api_key is not None else os.environ.get("AIMLAPI_KEY") or None
    explicit_url = base_url if base_url is not None else os.environ.get("AIMLAPI_BASE_URL")
    url = normalise_base_url(explicit_url or DEFAULT_BASE_URL)
    custom_url = url != DEFAULT_BASE_URL
    if offline is None:
        offline = key is None and not custom_url
    if not offline and key is None and not custom_url:
        raise AuthenticationError(
            "no API key: set the AIMLAPI_KEY environment variable, pass api_key=..., "
            "or use offline=True for the bundled simulator",
            status_code=None,
        )
    return key, url, offline


def open_history(history: History | str | os.PathLike[str] | bool | None) -> History | None:
    """The History a `history=` argument asks for (None: an in-memory cache only).

    A folder that cannot be created gives None and one warning: the client then keeps its
    images in memory, so it still works and never pays twice for the same image.

    Imported here, not at module level: `import mai_image_nb` stays light (no sqlite3 until used).
    """
    if history is False:
        return None
    from .history import History

    if isinstance(history, History):
        return history
    folder = None if history is None or history is True else history
    try:
        return History(folder)
    except MaiImageError as exc:
        if not isinstance(exc.__cause__, OSError):  # locked, newer schema: the user must know
            raise
        # The folder cannot even be created (read-only place, permissions): keep images in
        # memory for the client's life rather than refusing to work, and say so once.
        warn_user(
            f"{exc}; this client keeps its images in memory until it is closed",
            RuntimeWarning,
            fallback=str(folder or "history"),
        )
        return None
