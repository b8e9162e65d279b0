"""Where a simulated world's experiments run: worker processes on this machine, or a Ray cluster.

    ExecutorOptions  a local lab's `lab.options` (`executor`, `address`, `retries`), checked with the spec
    Executor         submit(key, fn, job) -> Future; result(future); cancel(future); shutdown()
    ProcessExecutor  a spawn-started process pool on this machine (the default)
    RayExecutor      one Ray task per experiment, idempotent by experiment key (`_ray.py`, extra `ray`)
    make_executor    the executor a spec's options and `LabSettings` ask for

A job is a plain dict and `fn(job)` returns a plain dict (JSON data): both cross process and machine
boundaries. Only a simulated world's lab uses an executor: a real instrument is reached through its
own protocol adapter (http, sila, pylabrobot), which is never re-dispatched by an executor.
"""

from __future__ import annotations

import multiprocessing
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wetloop.campaign import CampaignSpec, problem_lines

from ._settings import LabSettings
from .errors import LabError, WorkerLost

__all__ = ["Executor", "ExecutorOptions", "Job", "JobFn", "ProcessExecutor", "executor_options", "make_executor"]

Job = dict[str, Any]
JobFn = Callable[[Job], dict[str, Any]]


class ExecutorOptions(BaseModel):
    """`lab.options` of a simulated world's local lab; each unset field comes from `LabSettings`
    (`WETLOOP_LAB_EXECUTOR`, `WETLOOP_LAB_RAY_ADDRESS`, `WETLOOP_LAB_RAY_RETRIES`).

    - `executor`: `process` (worker processes on this machine) or `ray` (one Ray task per experiment).
    - `address`: the Ray cluster to join: `auto` (the cluster this machine is a node of), `HOST:PORT`
      (its head), or `ray://HOST:PORT` (Ray Client); unset: start a local cluster for the campaign.
    - `retries`: how often Ray re-runs an experiment whose worker or node died (a simulator only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    executor: Literal["process", "ray"] | None = None
    address: str | None = Field(default=None, min_length=1)
    retries: int | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _ray_only(self) -> ExecutorOptions:
        given = [name for name in ("address", "retries") if getattr(self, name) is not None]
        if self.executor == "process" and given:
            raise ValueError(f"{' and '.join(given)}: only the ray executor takes them; set executor: ray or remove them")
        return self


class Executor(ABC):
    """Runs `fn(job)` somewhere and hands back a Future of its dict. `result` turns the death of the
    worker that ran it into `WorkerLost`; any other exception is `fn`'s own."""

    kind: str = ""

    @abstractmethod
    def submit(self, key: str, fn: JobFn, job: Job) -> Future[dict[str, Any]]:
        """Start `fn(job)` for the experiment `key` (the executor may use the key to run it once)."""

    def result(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        """The finished future's dict; `WorkerLost` when its worker died."""
        return future.result()

    def cancel(self, future: Future[dict[str, Any]]) -> None:
        """Drop a submitted job that has not started (a running one may still finish)."""
        future.cancel()

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Let running jobs finish (`wait`) and drop queued ones; a later `submit` starts afresh."""

    def describe(self) -> dict[str, Any]:
        """What runs the jobs, for figures and logs."""
        return {"executor": self.kind}


class ProcessExecutor(Executor):
    """`workers` spawn-started processes on this machine (`initializer(*initargs)` runs in each).
    The world's job function keeps each experiment to one run on this machine (e.g. `DayStore.lock`)."""

    kind = "process"

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> None:
        self.workers = workers
        self._initializer, self._initargs = initializer, initargs
        self._pool: ProcessPoolExecutor | None = None
        self._pool_of: weakref.WeakKeyDictionary[Future[dict[str, Any]], ProcessPoolExecutor] = weakref.WeakKeyDictionary()

    def submit(self, key: str, fn: JobFn, job: Job) -> Future[dict[str, Any]]:
        if self._pool is None:  # spawn: the parent may hold torch's threads, fork is unsafe then
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=self._initializer,
                initargs=self._initargs,
            )
        future = self._pool.submit(fn, job)
        self._pool_of[future] = self._pool
        return future

    def result(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            return future.result()
        except BrokenProcessPool as exc:  # a worker died: the pool is unusable, the next job gets a new one
            if self._pool is not None and self._pool_of.get(future) is self._pool:  # not a newer pool
                self.shutdown(wait=False)
            hint = "in a script, guard the entry point with `if __name__ == '__main__':`"
            raise WorkerLost(f"a worker process died ({exc})", hint) from exc

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.kind, "workers": self.workers}


def executor_options(spec: CampaignSpec) -> ExecutorOptions:
    """The executor options of a spec whose lab is `local` (LabError, one line per problem, when wrong)."""
    options = spec.lab.options if spec.lab.adapter == "local" else {}
    try:
        return ExecutorOptions.model_validate(options)
    except ValidationError as exc:
        lines = problem_lines(exc, options, ExecutorOptions, "lab.options.")
        raise LabError("the local lab's options are invalid:\n  " + "\n  ".join(lines)) from None


def make_executor(
    options: ExecutorOptions,
    settings: LabSettings,
    *,
    workers: int,
    record_dir: Path,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Executor:
    """The executor the spec's `options` ask for, else `settings`' (env `WETLOOP_LAB_*`).

    `workers`: processes of the pool, or the CPUs of a local Ray cluster that this call starts.
    `record_dir`: where a Ray executor records each finished experiment by key (on the driver's machine).
    `initializer(*initargs)` runs in each pool process (a Ray worker needs none: Ray ends its workers).
    """
    kind = options.executor or settings.executor
    if kind == "process":
        return ProcessExecutor(workers, initializer, initargs)
    try:
        from ._ray import RayExecutor
    except ImportError as exc:
        raise LabError(
            f'the ray executor needs the optional extra "ray" ({exc.name} is missing): pip install "wetloop[ray]"'
        ) from None
    address = options.address or settings.ray_address
    retries = options.retries if options.retries is not None else settings.ray_retries
    return RayExecutor(record_dir, address=address, retries=retries, workers=workers)
