"""What a student's Studio shows of their class budget: one line from `GET /classroom/me`.

Called by the Studio's header on each refresh. It never raises and never slows the header
twice: a client that is not talking to a class gateway (offline, the provider itself, or a
server that does not answer `/classroom/me`) is remembered as such, and answers are reused
for a few seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from mai_image_nb.errors import APIStatusError
from mai_image_nb.settings import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from mai_image_nb.client import Client

__all__ = ["CACHE_S", "class_budget_text"]

CACHE_S = 5.0
TIMEOUT_S = 2.0
# client -> (when asked, the line shown ("" for none), whether to stop asking)
_cache: weakref.WeakKeyDictionary[Client, tuple[float, str, bool]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def class_budget_text(client: Client) -> str | None:
    """E.g. "class budget $1.25 left of $2.00", or None when the client has no class gateway."""
    if client.mode != "api" or client.base_url == DEFAULT_BASE_URL:
        return None
    now = time.monotonic()
    with _lock:
        cached = _cache.get(client)
    if cached is not None and (cached[2] or now - cached[0] < CACHE_S):
        return cached[1] or None
    last = cached[1] if cached is not None else ""
    final = False
    try:
        me = client.get_service_json("/classroom/me", timeout_s=TIMEOUT_S)
        text = f"class budget ${float(me['left_usd']):.2f} left of ${float(me['budget_usd']):.2f}"
    except APIStatusError as exc:
        # 404/405: a server without a gateway's pages (stop asking); else ask again later.
        final = exc.status_code in (404, 405) and not last
        text = "" if final else last
    except Exception:  # noqa: BLE001 - the header must show whatever happens here
        text = last  # a passing failure: keep the last line, ask again in a few seconds
    with _lock:
        _cache[client] = (now, text, final)
    return text or None
