"""`Client`: settings, the cache, the budget and one call from parameters to stored images.

HTTP with retries is `http_calls.py`; reading the answer is `answers.py`; grids and
batches (`compare`, `generate_many`) run through `batch.py`. No widgets here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from . import answers, retry, transport
from .errors import CancelledError, MaiImageError, ResponseError
from .generation import Generation
from .http_calls import Caller
from .listeners import Listeners
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
from .store import GenerationStore
from .usage import Usage

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
        self._closed = False
        self._last_usd: float | None = None
        self._last_usd_loaded = False
        self._server: OfflineServer | None = None
        self._listeners = Listeners()

        if offline:
            from .offline import OfflineServer

            self.mode: Literal["api", "offline"] = "offline"
            self._server = OfflineServer().start()
            self.base_url = self._server.url
            self.service = OFFLINE_SERVICE
            auth: transport.BearerAuth | None = None  # the key never goes to the simulator
            self._finalizer: weakref.finalize[[], Client] | None = weakref.finalize(
                self, self._server.close
            )
        else:
            self.mode = "api"
            self.base_url = url
            self.service = urlsplit(url).netloc.lower()
            auth = transport.BearerAuth(key) if key is not None else None
            self._finalizer = None  # nothing of ours to stop
        self._calls = Caller(  # sessions lent per call, at most one idle per worker
            auth=auth, clock=self._clock, rand=random.random, max_idle_sessions=self.max_workers
        )

        opened = open_history(history)
        self._store = GenerationStore(opened, owns_history=opened is not history)

    # -- settings and state --------------------------------------------------------------

    @property
    def history(self) -> History | None:
        """Where generations are kept (None with `history=False`: an in-memory cache only)."""
        return self._store.history

    @property
    def spent_usd(self) -> float:
        """Reported `usd_spent` of every answer, and the estimate for each that reported none."""
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
            history = self._store.history
            if history is not None and self._last_usd is None:
                self._last_usd = history.last_usd(self.model, self.service)
            self._last_usd_loaded = True
        return self._last_usd if self._last_usd is not None else DEFAULT_USD_PER_IMAGE

    def on_generation(self, listener: Callable[[Generation], None]) -> Callable[[], None]:
        """Call `listener(generation)` after each new image is stored (from the worker thread).

        For panels that show the history live, or to log every image. A failing listener
        is logged and never costs the image. Returns a function that unsubscribes.
        """
        return self._listeners.subscribe(listener)

    def _use_clock(self, clock: retry.Clock, rand: Callable[[], float] | None = None) -> None:
        """Swap the clock (and jitter source) that waits go through: for tests, not users."""
        self._clock = clock
        self._calls.use_clock(clock, rand if rand is not None else self._calls.rand)

    def __repr__(self) -> str:
        return (
            f"<mai_image_nb.Client mode={self.mode!r} base_url={self.base_url!r} "
            f"model={self.model!r} spent_usd={self.spent_usd:.4f}>"
        )

    def get_service_json(self, path: str, *, timeout_s: float = 5.0) -> Any:
        """GET `path` on `base_url` with this client's key; the answer's JSON (API mode only).

        For servers that speak more than the image API, such as a class gateway's
        `/classroom/me` (the Studio's header shows a student's class budget with it).

        Raises:
            APIStatusError: an error status. APIConnectionError: a network failure.
            MaiImageError: offline mode, an answer over the cap, or no JSON.
        """
        if self.mode != "api" or self._closed:
            raise MaiImageError("get_service_json needs an open client in API mode")
        url = self.base_url + "/" + path.lstrip("/")
        return self._calls.get_json(url, timeout_s=min(timeout_s, self.timeout))

    def close(self) -> None:
        """Close connections, stop the simulator if this client started one, close the history,
        and let go of the in-memory cache (`history=False`)."""
        if self._closed:
            return
        self._closed = True
        self._calls.close()
        if self._finalizer is not None:
            self._finalizer()
        self._store.close()

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
        found = self._store.lookup(cache_key(params, self.service))
        return found.as_cached() if found is not None else None

    def generate_params(
        self, params: Params, *, cache: bool = True, cancel: threading.Event | None = None
    ) -> Generation:
        """`generate()` for parameters already validated (by a batch, grid or panel form).

        Raises:
            MaiImageError: as `generate()` does (but ValidationError), or the client is closed.
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
            reservation.release()  # a no-op once the answer charged it

    def _request(
        self, params: Params, cancel: threading.Event | None, reservation: Reservation
    ) -> Generation:
        started = self._clock.now()
        reply = self._calls.post(
            self.base_url + GENERATIONS_PATH,
            request_body(params),
            cancel=cancel,
            max_retries=self.max_retries,
            timeout_s=self.timeout,
        )
        try:
            payload = answers.load_answer(reply.body)
        except ResponseError:
            reservation.charge(None)  # a 2xx answer: paid for, as far as we can tell
            raise
        usage = answers.parse_usage(payload)
        reservation.charge(usage.usd_spent if usage is not None else None)
        if usage is not None:
            self._last_usd = usage.usd_spent
        first, *others = answers.image_refs(payload)
        try:
            return self._keep(params, first, usage, started)
        finally:  # the others are paid for too (even if the first failed): next free samples
            for ref in others:
                try:
                    self._keep(self._next_free_sample(params), ref, None, started)
                except MaiImageError as exc:
                    log.warning("an extra image of the answer could not be kept: %s", exc)

    def _next_free_sample(self, params: Params) -> Params:
        sample = params.sample + 1
        while self.cached(dataclasses.replace(params, sample=sample)) is not None:
            sample += 1
        return dataclasses.replace(params, sample=sample)

    def _keep(
        self, params: Params, ref: answers.ImageRef, usage: Usage | None, started: float
    ) -> Generation:
        """One image of an answer, fetched if need be, checked, stored and announced."""
        data = ref.data
        if data is None:
            data = self._calls.download(
                ref.url or "", max_retries=self.max_retries, timeout_s=self.timeout
            )
        generation = answers.new_generation(
            params,
            service=self.service,
            data=data,
            url=ref.url,
            usage=usage,
            elapsed_s=self._clock.now() - started,
        )
        self._store.keep(generation, cache_key(params, self.service))
        self._listeners.notify(generation)
        return generation

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
        """Many images concurrently, in input order, an error in each failure's slot; a dict
        item overrides `common`; `progress` and `cancel` work as in `compare`.

        Raises:
            ValidationError: `prompts_or_dicts` is a bare string or bytes, or an unknown
                keyword is given (nothing is sent).
            BudgetExceededError: the items not yet cached would pass the budget.
        """
        from .batch import run_many

        return run_many(self, prompts_or_dicts, **common)
