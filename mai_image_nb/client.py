"""`Client`: settings, the cache, the budget and the call itself (retries included).

Grids and batches (`compare`, `generate_many`) run through `batch.py`; this module
owns one call from validated parameters to a stored `Generation`. No widgets here.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from . import retry, transport
from .errors import (
    APIConnectionError,
    APIStatusError,
    CancelledError,
    MaiImageError,
    ResponseError,
)
from .generation import Generation, Usage
from .params import (
    DEFAULT_MODEL,
    Params,
    cache_key,
    check_count,
    check_number,
    request_body,
    validate_params,
)
from .settings import DEFAULT_BASE_URL, open_history, resolve_connection
from .spend import Reservation, SpendTracker

if TYPE_CHECKING:
    from .comparison import Cell, Comparison
    from .history import History
    from .offline import OfflineServer

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_USD_PER_IMAGE", "Client"]

log = logging.getLogger(__name__)

DEFAULT_USD_PER_IMAGE = 0.0627  # the provider's example answer: usd_spent 0.0626835
GENERATIONS_PATH = "/v1/images/generations"
OFFLINE_SERVICE = "offline"


class Client:
    """A client for MAI-Image 2.5: the real API with a key, the bundled simulator without.

    Every call is validated before anything is sent, retried with back-off, charged
    against `budget_usd`, and stored in the history, which also serves as a cache:
    running a notebook again costs nothing and shows the same images.

    Raises (on construction):
        ValidationError: a setting is not allowed (model, base_url, timeout, ...).
        AuthenticationError: `offline=False` and no key was given or found.
        MaiImageError: the history folder or database cannot be used.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        offline: bool | None = None,
        history: History | str | os.PathLike[str] | bool | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        max_workers: int = 4,
        budget_usd: float | None = None,
    ) -> None:
        validate_params("x", model=model)  # checks `model` ("x" stands in for a prompt)
        check_number("timeout", timeout, minimum=0.001)
        check_count("max_retries", max_retries, minimum=0)
        check_count("max_workers", max_workers, minimum=1)
        key, url, offline = resolve_connection(api_key, base_url, offline)

        self.model = model
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_workers = int(max_workers)
        self._spend = SpendTracker(budget_usd)
        self._clock: retry.Clock = retry.SystemClock()
        self._rand: Callable[[], float] = random.random
        self._gate = retry.BackoffGate(self._clock)
        self._sessions = transport.SessionPool()
        self._closed = False
        self._last_usd: float | None = None
        self._last_usd_loaded = False
        self._memory: dict[str, Generation] = {}
        self._memory_lock = threading.Lock()
        self._server: OfflineServer | None = None
        self._listeners: list[Callable[[Generation], None]] = []

        if offline:
            from .offline import OfflineServer

            self.mode: Literal["api", "offline"] = "offline"
            self._server = OfflineServer().start()
            self.base_url = self._server.url
            self.service = OFFLINE_SERVICE
            self._auth: transport.BearerAuth | None = None  # the key never goes to the simulator
            self._finalizer = weakref.finalize(self, self._server.close)
        else:
            self.mode = "api"
            self.base_url = url
            self.service = urlsplit(url).netloc.lower()
            self._auth = transport.BearerAuth(key) if key is not None else None
            self._finalizer = weakref.finalize(self, lambda: None)

        self._history = open_history(history)
        self._owns_history = self._history is not None and self._history is not history

    # -- settings and state --------------------------------------------------------------

    @property
    def history(self) -> History | None:
        """Where generations are kept (None with `history=False`: an in-memory cache only)."""
        return self._history

    @property
    def spent_usd(self) -> float:
        """Sum of `meta.usage.usd_spent` of every answer that reported one."""
        return self._spend.spent_usd

    @property
    def budget_usd(self) -> float | None:
        """The cap on this client's spend (None: no cap); settable, for the next reservation."""
        return self._spend.budget_usd

    @budget_usd.setter
    def budget_usd(self, value: float | None) -> None:
        self._spend.set_budget(value)

    def check_budget(self, n: int = 1) -> None:
        """Raise if `n` new images at the estimate would pass the budget (reserves nothing).

        What a grid, a batch or the panel asks before it starts.

        Raises:
            ValidationError: `n` is not an integer >= 0.
            BudgetExceededError: saying the budget, the spend and the estimate.
        """
        self._spend.check(self.estimate(n))

    def estimate(self, n: int = 1) -> float:
        """Expected USD cost of `n` new images: the last cost seen for this model and service.

        Raises:
            ValidationError: `n` is not an integer >= 0.
        """
        check_count("n", n, minimum=0)
        return n * self._usd_per_image()

    def _usd_per_image(self) -> float:
        if not self._last_usd_loaded:
            if self._history is not None and self._last_usd is None:
                self._last_usd = self._history.last_usd(self.model, self.service)
            self._last_usd_loaded = True
        return self._last_usd if self._last_usd is not None else DEFAULT_USD_PER_IMAGE

    def on_generation(self, listener: Callable[[Generation], None]) -> Callable[[], None]:
        """Call `listener(generation)` after each new image is stored (from the worker thread).

        For panels that show the history live, or to log every image. A failing listener
        is logged and never costs the image. Returns a function that unsubscribes.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _use_clock(self, clock: retry.Clock, rand: Callable[[], float] | None = None) -> None:
        """Swap the clock (and jitter source) that waits go through: for tests, not users."""
        self._clock = clock
        self._gate = retry.BackoffGate(clock)
        if rand is not None:
            self._rand = rand

    def __repr__(self) -> str:
        return (
            f"<mai_image_nb.Client mode={self.mode!r} base_url={self.base_url!r} "
            f"model={self.model!r} spent_usd={self.spent_usd:.4f}>"
        )

    def close(self) -> None:
        """Close connections, stop the simulator if this client started one, close the history."""
        if self._closed:
            return
        self._closed = True
        self._sessions.close()
        self._finalizer()
        if self._history is not None and self._owns_history:
            self._history.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one image -------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        aspect_ratio: str = "1:1",
        temperature: float = 1.0,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        sample: int = 0,
        cache: bool = True,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Make one image (or return the stored one for the same parameters and `sample`).

        `cancel`, once set, ends a back-off wait or a call not yet sent with
        `CancelledError`; a request already on the wire finishes.

        Raises:
            ValidationError: a parameter is not allowed (nothing is sent).
            BudgetExceededError: the call would pass `budget_usd` (nothing is sent).
            AuthenticationError, RateLimitError, APIStatusError: the service refused.
            APIConnectionError, APITimeoutError: the service could not be reached.
            ResponseError: the answer held no usable image.
            CancelledError: `cancel` was set before the request was sent.
        """
        params = validate_params(
            prompt,
            aspect_ratio=aspect_ratio,
            temperature=temperature,
            max_tokens=max_tokens,
            max_completion_tokens=max_completion_tokens,
            sample=sample,
            model=self.model,
        )
        return self.generate_params(params, cache=cache, cancel=cancel)

    def cached(self, params: Params) -> Generation | None:
        """The stored generation for `params` on this client's service, without any request."""
        key = cache_key(params, self.service)
        if self._history is not None:
            found = self._history.lookup(key)
        else:
            with self._memory_lock:
                found = self._memory.get(key)
        return found.as_cached() if found is not None else None

    def generate_params(
        self, params: Params, *, cache: bool = True, cancel: threading.Event | None = None
    ) -> Generation:
        """`generate()` for parameters already validated: the one-image engine.

        Batches, grids and the panel validate their forms once and call this.

        Raises:
            MaiImageError: as `generate()` does (all but ValidationError), or this
                client is closed.
        """
        if self._closed:
            raise MaiImageError("this Client is closed; make a new one")
        if cache:
            hit = self.cached(params)
            if hit is not None:
                return hit
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        reservation = self._spend.reserve(self._usd_per_image())
        try:
            return self._request(params, cancel, reservation)
        finally:
            reservation.release()  # a no-op when a reported cost settled it

    def _request(
        self, params: Params, cancel: threading.Event | None, reservation: Reservation
    ) -> Generation:
        started = self._clock.now()
        reply = self._post_with_retries(request_body(params), cancel)
        try:
            ref, usage = transport.parse_generation(reply.body)
        except ResponseError as exc:
            self._record_usage(getattr(exc, "usage", None), reservation)
            raise ResponseError(exc.message) from None
        self._record_usage(usage, reservation)
        data = ref.data if ref.data is not None else self._download(ref.url or "")
        image_format, width, height = transport.inspect_image(data)
        created = datetime.now(timezone.utc)
        generation = Generation(
            id=created.strftime("%Y%m%d-%H%M%S-") + os.urandom(4).hex(),
            params=params,
            service=self.service,
            created=created,
            width=width,
            height=height,
            image_format=image_format,
            url=ref.url,
            usage=usage,
            elapsed_s=round(self._clock.now() - started, 4),
            data=data,
        )
        self._store(generation, cache_key(params, self.service))
        for listener in list(self._listeners):
            try:
                listener(generation)
            except Exception:  # a broken display must not cost the user the image
                log.warning("a generation listener failed", exc_info=True)
        return generation

    def _record_usage(self, usage: Usage | None, reservation: Reservation) -> None:
        """Settle the call's reservation with the reported cost as soon as it is known.

        A call that still downloads and stores its image is then not counted twice.
        """
        if usage is not None:
            reservation.settle(usage.usd_spent)
            self._last_usd = usage.usd_spent

    def _store(self, generation: Generation, key: str) -> None:
        if self._history is None:
            with self._memory_lock:
                self._memory[key] = generation
            return
        import sqlite3  # loaded with the history already; imported here to keep import light

        try:
            self._history.add(generation, cache_key=key)
        except (OSError, sqlite3.Error, MaiImageError) as exc:
            # The image is paid for and in hand: give it to the caller, but say so loudly.
            log.warning("could not store generation %s in the history: %s", generation.id, exc)
            warnings.warn(
                f"generation {generation.id} could not be stored in the history: {exc}",
                RuntimeWarning,
                stacklevel=4,
            )

    # -- HTTP with retries -----------------------------------------------------------------

    def _post_with_retries(
        self, body: dict[str, Any], cancel: threading.Event | None
    ) -> transport.Reply:
        url = self.base_url + GENERATIONS_PATH
        attempts = 1 + self.max_retries
        last_error: MaiImageError | None = None
        for attempt in range(attempts):
            self._gate.wait_open(cancel)
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            session = self._sessions.get("api")
            log.debug("POST %s (attempt %d of %d)", url, attempt + 1, attempts)
            try:
                reply = transport.post_json(
                    session, url, body, auth=self._auth, timeout_s=self.timeout
                )
            except APIConnectionError as exc:
                last_error = exc
                delay_s = retry.backoff_delay(attempt, rand=self._rand)
            else:
                if 200 <= reply.status < 300:
                    return reply
                error = transport.error_for_status(reply)
                if not retry.is_retryable_status(reply.status):
                    raise error
                retry_after_s = retry.parse_retry_after(reply.headers, now_wall=self._clock.wall())
                if retry_after_s is not None and retry_after_s > retry.RETRY_AFTER_MAX_S:
                    error.message += (
                        f" (the service asked to wait {retry_after_s:.0f} s, "
                        f"more than {retry.RETRY_AFTER_MAX_S:.0f} s)"
                    )
                    raise error
                last_error = error
                if retry_after_s is not None:
                    delay_s = retry_after_s
                else:
                    delay_s = retry.backoff_delay(attempt, rand=self._rand)
                if reply.status == 429 or retry_after_s is not None:
                    self._gate.close_for(delay_s)
            if attempt + 1 == attempts:
                break
            log.debug("retrying in %.2f s after: %s", delay_s, last_error)
            if self._clock.wait(delay_s, cancel):
                raise CancelledError("cancelled while waiting to retry")
        assert last_error is not None
        if isinstance(last_error, APIStatusError):
            raise last_error
        raise type(last_error)(
            f"could not reach {urlsplit(url).netloc} after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}: {last_error.message}"
        )

    def _download(self, url: str) -> bytes:
        """GET the answer's image without the key; retried on network errors and 5xx."""
        host = urlsplit(url).netloc
        attempts = 1 + self.max_retries
        problem = ""
        for attempt in range(attempts):
            session = self._sessions.get("download")
            try:
                reply = transport.fetch_image(session, url, timeout_s=self.timeout)
            except APIConnectionError as exc:
                problem = exc.message
            else:
                if 200 <= reply.status < 300:
                    return reply.body
                problem = f"HTTP {reply.status}"
                if not retry.is_retryable_status(reply.status):
                    break
            if attempt + 1 < attempts:
                # The image is already paid for: Cancel does not abandon it.
                self._clock.wait(retry.backoff_delay(attempt, rand=self._rand), None)
        raise ResponseError(f"the image could not be fetched from {host}: {problem}")

    # -- grids and batches (batch.py does the work) ------------------------------------------

    def compare(
        self,
        prompt: str | Sequence[str],
        *,
        aspect_ratios: Sequence[str] = ("1:1", "16:9", "9:16"),
        temperatures: Sequence[float] = (0.2, 1.0, 1.8),
        repeats: int = 1,
        cache: bool = True,
        progress: bool = True,
        cancel: threading.Event | None = None,
        on_cell: Callable[[Cell], None] | None = None,
    ) -> Comparison:
        """Every prompt × aspect ratio × temperature (× repeats) as a grid, made concurrently.

        `prompt` is one prompt or a list of 1-12 variants (each validated like generate's).
        Repeat r of a cell is `sample=r` of `generate()`, so grids and single calls share
        the cache. A failed cell holds its error instead of raising. See API.md for the rules.

        Raises:
            ValidationError: a parameter is not allowed (nothing is sent).
            BudgetExceededError: the cells not yet cached would pass the budget.
        """
        from .batch import run_comparison

        return run_comparison(
            self,
            prompt,
            aspect_ratios=aspect_ratios,
            temperatures=temperatures,
            repeats=repeats,
            cache=cache,
            progress=progress,
            cancel=cancel,
            on_cell=on_cell,
        )

    def generate_many(
        self,
        prompts_or_dicts: Iterable[str | Mapping[str, Any]],
        **common: Any,
    ) -> list[Generation | MaiImageError]:
        """Many images concurrently; results in input order, an error in the slot of each failure.

        A dict item overrides `common`. `progress` and `cancel` work as in `compare`.

        Raises:
            BudgetExceededError: the items not yet cached would pass the budget.
        """
        from .batch import run_many

        return run_many(self, prompts_or_dicts, **common)
