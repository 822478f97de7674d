"""Many calls at once: the worker pool behind `Client.compare` and `Client.generate_many`.

Cached items are answered first without a request; the rest are checked against
the budget as a whole, then run on `max_workers` threads that share the client's
back-off gate. Cancel, KeyboardInterrupt and failures end cells, never the batch.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import display
from .comparison import Cell, Comparison
from .errors import CancelledError, MaiImageError, ValidationError
from .generation import Generation
from .params import GENERATE_FIELDS, Params, check_count, validate_params

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Job", "run_comparison", "run_jobs", "run_many"]

log = logging.getLogger(__name__)

Result = Generation | MaiImageError


@dataclass(frozen=True)
class Job:
    """One slot of a batch: validated parameters, or the error that kept it from being sent."""

    params: Params | None
    error: MaiImageError | None = None

    def __post_init__(self) -> None:
        if (self.params is None) == (self.error is None):
            raise TypeError("a Job holds exactly one of params and error")


def run_jobs(
    client: Client,
    jobs: Sequence[Job],
    *,
    cache: bool = True,
    progress: bool = True,
    cancel: threading.Event | None = None,
    on_done: Callable[[int, Result], None] | None = None,
    description: str = "images",
) -> list[Result]:
    """Run `jobs` concurrently and return one result per job, in order.

    `on_done(index, result)` runs in the thread that finished the job (for cached
    or invalid jobs, in the caller's thread), before that worker takes another job.
    If interrupted (KeyboardInterrupt), sets `cancel`, stops sending and re-raises;
    requests already on the wire finish in the background and are stored.

    Raises:
        BudgetExceededError: the jobs that are not cached would pass the budget.
    """
    results: list[Result | None] = [None] * len(jobs)
    pending: list[int] = []
    for index, job in enumerate(jobs):
        if job.error is not None or job.params is None:
            results[index] = job.error or ValidationError("item", None, "parameters")
            continue
        hit = client.cached(job.params) if cache else None
        if hit is not None:
            results[index] = hit
        else:
            pending.append(index)
    client.check_budget(len(pending))

    cancel = cancel if cancel is not None else threading.Event()
    bar = _progress_bar(progress, total=len(jobs), description=description)
    try:
        for index, result in enumerate(results):
            if result is not None:
                _notify(on_done, index, result)
                bar.update(1)

        def work(index: int) -> Result:
            params = jobs[index].params
            assert params is not None
            try:
                result: Result = client.generate_params(params, cache=cache, cancel=cancel)
            except MaiImageError as exc:
                result = exc
            except Exception as exc:
                log.debug("job %d failed unexpectedly", index, exc_info=True)
                result = MaiImageError(f"unexpected error: {type(exc).__name__}: {exc}")
            _notify(on_done, index, result)
            return result

        executor = cf.ThreadPoolExecutor(
            max_workers=min(client.max_workers, max(1, len(pending))),
            thread_name_prefix="mai_image_nb",
        )
        futures = {executor.submit(work, index): index for index in pending}
        try:
            not_done = set(futures)
            while not_done:
                done, not_done = cf.wait(not_done, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    results[futures[future]] = future.result()
                    bar.update(1)
        except BaseException:
            cancel.set()  # workers stop sending; anything on the wire still lands in the history
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    finally:
        bar.close()
    return [r if r is not None else CancelledError() for r in results]


def _notify(on_done: Callable[[int, Result], None] | None, index: int, result: Result) -> None:
    if on_done is None:
        return
    try:
        on_done(index, result)
    except Exception:
        # A broken display callback must not cost the user their images.
        log.warning("on_cell callback failed", exc_info=True)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _NotebookBar:
    """tqdm's widget bar while the work runs, then its last line as text (see
    `display.show_until_done`): the notebook keeps no widget that needs the kernel."""

    def __init__(self, bar_class: Any, *, total: int, description: str) -> None:
        self._bar = bar_class(total=total, desc=description, unit="image", leave=True,
                              display=False)  # fmt: skip
        self._replace = display.show_until_done(self._bar.container)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
        self._replace(str(self._bar))


def _progress_bar(enabled: bool, *, total: int, description: str) -> Any:
    """tqdm's notebook bar in Jupyter (text once done), its text bar on stderr elsewhere."""
    if not enabled or total == 0:
        return _NoBar()
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm_notebook

    if issubclass(tqdm, tqdm_notebook):
        return _NotebookBar(tqdm, total=total, description=description)
    return tqdm(total=total, desc=description, unit="image", leave=True)


def run_many(
    client: Client,
    prompts_or_dicts: Iterable[str | Mapping[str, Any]],
    *,
    progress: bool = True,
    cancel: threading.Event | None = None,
    cache: bool = True,
    **common: Any,
) -> list[Result]:
    """`Client.generate_many`: validate every item, then run the valid ones together."""
    if isinstance(prompts_or_dicts, str | bytes | bytearray | Mapping) or not isinstance(
        prompts_or_dicts, Iterable
    ):
        raise ValidationError(
            "prompts_or_dicts",
            prompts_or_dicts,
            "a list of prompts or dicts (for one prompt, use generate() or wrap it in [ ])",
        )
    unknown = set(common) - GENERATE_FIELDS
    if unknown:
        raise ValidationError(
            "generate_many",
            sorted(unknown),
            "keyword arguments of generate(): "
            + ", ".join(sorted(GENERATE_FIELDS | {"progress", "cancel", "cache"})),
        )
    jobs = [_job_for(item, common, client.model) for item in prompts_or_dicts]
    return run_jobs(client, jobs, cache=cache, progress=progress, cancel=cancel)


def _job_for(item: str | Mapping[str, Any], common: Mapping[str, Any], model: str) -> Job:
    fields = dict(common)
    if isinstance(item, Mapping):
        extra = set(item) - GENERATE_FIELDS
        if extra:
            return Job(
                None,
                ValidationError(
                    "item", sorted(extra), "a dict of " + ", ".join(sorted(GENERATE_FIELDS))
                ),
            )
        fields.update(item)
    else:
        fields["prompt"] = item
    try:
        prompt = fields.pop("prompt")
    except KeyError:
        return Job(None, ValidationError("prompt", None, "given for every item"))
    try:
        return Job(validate_params(prompt, model=model, **fields))
    except ValidationError as exc:
        return Job(None, exc)


MAX_PROMPTS = 12  # prompt variants in one grid


def run_comparison(
    client: Client,
    prompt_or_prompts: str | Sequence[str],
    *,
    aspect_ratios: Sequence[str],
    temperatures: Sequence[float],
    repeats: int,
    cache: bool,
    progress: bool,
    cancel: threading.Event | None,
    on_cell: Callable[[Cell], None] | None,
) -> Comparison:
    """`Client.compare`: one job per (prompt, ratio, temperature, repeat), in that order.

    Every cell is validated before anything is sent; a bare `str` is one prompt.
    """
    prompts = _prompts(prompt_or_prompts)
    ratios = _distinct("aspect_ratios", aspect_ratios)
    temps = _distinct("temperatures", temperatures)
    check_count("repeats", repeats, minimum=1)
    slots = [
        Slot(p, r, t, k) for p in prompts for r in ratios for t in temps for k in range(repeats)
    ]
    jobs = [
        Job(
            validate_params(
                s.prompt,
                aspect_ratio=s.aspect_ratio,
                temperature=s.temperature,
                sample=s.repeat,
                model=client.model,
            )
        )
        for s in slots
    ]
    grid = Grid(client, prompts, ratios, temps, repeats, slots, jobs)
    return _run_cells(grid, cache=cache, progress=progress, cancel=cancel, on_cell=on_cell)


@dataclass(frozen=True)
class Slot:
    """Where a job sits in a grid."""

    prompt: str
    aspect_ratio: str
    temperature: float
    repeat: int

    def cell(self, result: Result) -> Cell:
        if isinstance(result, Generation):
            return Cell(*self.place, generation=result)
        return Cell(*self.place, error=result)

    @property
    def place(self) -> tuple[str, str, float, int]:
        return (self.prompt, self.aspect_ratio, self.temperature, self.repeat)


@dataclass(frozen=True)
class Grid:
    """A validated grid: its axes, one slot and one job per cell."""

    client: Client
    prompts: tuple[str, ...]
    ratios: tuple[str, ...]
    temps: tuple[float, ...]
    repeats: int
    slots: Sequence[Slot]
    jobs: Sequence[Job]


def _run_cells(
    grid: Grid,
    *,
    cache: bool,
    progress: bool,
    cancel: threading.Event | None,
    on_cell: Callable[[Cell], None] | None,
    keep: Mapping[int, Cell] | None = None,
) -> Comparison:
    """Run the jobs of a grid (all, or only those not in `keep`) into a `Comparison`."""
    keep = keep or {}
    todo = [i for i in range(len(grid.slots)) if i not in keep]

    def on_done(position: int, result: Result) -> None:
        if on_cell is not None:
            on_cell(grid.slots[todo[position]].cell(result))

    results = run_jobs(
        grid.client,
        [grid.jobs[i] for i in todo],
        cache=cache,
        progress=progress,
        cancel=cancel,
        on_done=on_done,
        description="grid",
    )
    cells = dict(keep)
    for position, result in zip(todo, results, strict=True):
        cells[position] = grid.slots[position].cell(result)

    def rerun(failed: Sequence[int], **options: Any) -> Comparison:
        kept = {i: c for i, c in cells.items() if i not in failed}
        return _run_cells(grid, cache=True, keep=kept, **options)

    return Comparison(
        prompts=grid.prompts,
        aspect_ratios=grid.ratios,
        temperatures=grid.temps,
        repeats=grid.repeats,
        cells=[cells[i] for i in range(len(grid.slots))],
        rerun=rerun,
        history=grid.client.history,
    )


def _prompts(value: object) -> tuple[str, ...]:
    """One prompt (a `str`) or 1 to `MAX_PROMPTS` distinct variants, each checked as generate's."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ValidationError(
            "prompt", value, f"a string, or a list of 1 to {MAX_PROMPTS} prompt strings"
        )
    prompts = tuple(value)  # each checked below
    if not 1 <= len(prompts) <= MAX_PROMPTS:
        raise ValidationError(
            "prompt", f"{len(prompts)} prompts", f"1 to {MAX_PROMPTS} prompt variants"
        )
    for prompt in prompts:
        validate_params(prompt)  # a bad variant stops the whole grid before anything is sent
    if len(set(prompts)) != len(prompts):
        raise ValidationError("prompt", list(prompts), "prompt variants without repeats")
    return prompts


def _distinct(field: str, values: Sequence[Any]) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValidationError(field, values, "a list or tuple of values")
    items = tuple(values)
    if not items:
        raise ValidationError(field, values, "a non-empty list")
    if len(set(items)) != len(items):
        raise ValidationError(field, values, "a list without repeated values")
    return items
