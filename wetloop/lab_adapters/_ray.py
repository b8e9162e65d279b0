"""`RayExecutor`: each simulated experiment is one Ray task, run at most once by experiment key.

Ray re-runs a task whose worker died (`retries`), and may re-run a finished one whose result was lost
with its node (lineage reconstruction); a resumed campaign submits again what it had not read. So the
task itself asks a ledger before it starts and records its result there, durably, before it returns:

    ledger      one Ray actor per executor, pinned to the driver's node (the campaign's machine), that
                keeps `<record_dir>/<experiment key>.json` (written once, atomically, fsynced) and
                `<record_dir>/runs/<experiment key>` (one line per finished run) in a `DayStore`
    run_once    the task: a recorded result is returned as it is; else it claims the key (a lease it
                renews while it runs), runs `fn(job)`, records the result, then returns it

Every node reaches the ledger through Ray, so no folder has to be shared for "once" to hold. A claim
held by an earlier attempt of the same task is taken over at once (Ray starts a retry only after that
attempt's worker died); a claim of another task (another driver's submission) blocks until it is
recorded or its lease runs out. The driver reads each result once and drops its reference.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ._disk import DayStore
from ._executors import Executor, Job, JobFn
from .errors import LabError, WorkerLost

__all__ = ["Ledger", "RayExecutor", "run_once"]

LEASE_S = 30.0
"""A claim not renewed for this long belongs to a task that is gone."""
WAIT_S = 0.5
"""How often a task waiting for another's claim asks again."""


class Ledger:
    """The record of finished experiments by key (a Ray actor on the driver's node; see the module)."""

    def __init__(self, record_dir: str, lease_s: float = LEASE_S) -> None:
        self.store = DayStore(record_dir)
        self.lease_s = lease_s
        self.claims: dict[str, tuple[dict[str, str], float]] = {}
        self.answered: dict[str, int] = {}

    def claim(self, key: str, holder: dict[str, str]) -> dict[str, Any]:
        """`{"state": "done", "result": ...}` when recorded; `{"state": "run"}` when `holder` may run it
        now; `{"state": "wait", "holder": ...}` while another task holds a live claim on it."""
        recorded = self.store.read_result(key)
        if recorded is not None:
            self.answered[key] = self.answered.get(key, 0) + 1
            return {"state": "done", "result": recorded}
        now = time.monotonic()
        held = self.claims.get(key)
        if held is not None and held[0]["task"] != holder["task"] and held[1] > now:
            return {"state": "wait", "holder": held[0]}
        self.claims[key] = (holder, now + self.lease_s)
        return {"state": "run"}

    def renew(self, key: str, holder: dict[str, str]) -> bool:
        held = self.claims.get(key)
        if held is None or held[0] != holder:
            return False
        self.claims[key] = (holder, time.monotonic() + self.lease_s)
        return True

    def release(self, key: str, holder: dict[str, str]) -> None:
        if key in self.claims and self.claims[key][0] == holder:
            del self.claims[key]

    def record(self, key: str, holder: dict[str, str], result: dict[str, Any]) -> None:
        """Count this run; keep its result unless one is recorded already (the first result stands)."""
        if self.store.read_result(key) is None:
            self.store.write_result(key, result)
        self.store.mark_run(key, holder["task"])
        self.release(key, holder)

    def runs(self) -> dict[str, int]:
        """Runs recorded per experiment key (more than 1 only if a run was duplicated)."""
        return self.store.completed_runs()

    def answered_from_record(self) -> dict[str, int]:
        """Tasks answered with a recorded result instead of running, per key, since this ledger started
        (a re-run after a lost result, or a resubmission of a finished experiment)."""
        return dict(self.answered)


def run_once(fn: JobFn, key: str, job: Job, ledger: Any) -> dict[str, Any]:
    """The Ray task: `fn(job)` at most once per experiment key across retries, reconstructions and
    drivers (see the module); the result is recorded by the ledger before this returns."""
    context = ray.get_runtime_context()
    holder = {"task": context.get_task_id() or "", "worker": context.get_worker_id()}
    while True:
        verdict = ray.get(ledger.claim.remote(key, holder))
        if verdict["state"] == "done":
            return verdict["result"]
        if verdict["state"] == "run":
            break
        time.sleep(WAIT_S)
    with _renewing(ledger, key, holder):
        try:
            result = fn(job)
        except BaseException:
            with contextlib.suppress(Exception):
                ray.get(ledger.release.remote(key, holder))
            raise
    ray.get(ledger.record.remote(key, holder, result))
    return result


@contextlib.contextmanager
def _renewing(ledger: Any, key: str, holder: dict[str, str]) -> Iterator[None]:
    """Renew the claim every third of a lease while the body runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_S / 3):
            with contextlib.suppress(Exception):
                ray.get(ledger.renew.remote(key, holder))

    thread = threading.Thread(target=renew, daemon=True, name="wetloop-claim")
    thread.start()
    try:
        yield
    finally:
        stop.set()


class RayExecutor(Executor):
    """Each job is one Ray task (1 CPU) run through `run_once`; the ledger lives on this process's node.

    Args:
        record_dir: the ledger's folder, on the driver's machine (e.g. under the campaign's run folder).
        address: the cluster to join (`ray.init(address=...)`); None joins `RAY_ADDRESS` when that is
            set, else starts a local cluster of `workers` CPUs that ends with this process.
        retries: Ray's re-runs of a task whose worker or node died; exceptions raised by `fn` are not retried.
    """

    kind = "ray"

    def __init__(self, record_dir: Path | str, *, address: str | None = None, retries: int = 3, workers: int = 1) -> None:
        self.record_dir = Path(record_dir)
        self.address, self.retries, self.workers = address, retries, workers
        self._refs: dict[Future[dict[str, Any]], ray.ObjectRef] = {}
        self._ledger: Any = None
        self._task: Any = None
        self._connected_here = False

    # -- connecting -------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._ledger is not None:
            return
        if not ray.is_initialized():
            local = self.address is None and not os.environ.get("RAY_ADDRESS")  # ray.init reads RAY_ADDRESS itself
            try:
                ray.init(
                    address=self.address,
                    num_cpus=self.workers if local else None,
                    include_dashboard=False if local else None,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"join the Ray cluster at {self.address!r}" if self.address else "start a local Ray cluster"
                raise LabError(
                    f"could not {where} ({type(exc).__name__}: {exc}); check lab.options.address or WETLOOP_LAB_RAY_ADDRESS, "
                    "and that RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH are set as the cluster's nodes have them"
                ) from exc
            self._connected_here = True
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        ledger_cls = ray.remote(Ledger).options(num_cpus=0, max_restarts=-1, max_task_retries=-1, scheduling_strategy=here)
        self._ledger = ledger_cls.remote(str(self.record_dir))
        self._task = ray.remote(run_once)

    # -- the executor -----------------------------------------------------------------------------
    def submit(self, key: str, fn: JobFn, job: Job) -> Future[dict[str, Any]]:
        self._start()
        ref = self.task_options().remote(fn, key, job, self._ledger)
        future: Future[dict[str, Any]] = ref.future()
        self._refs[future] = ref
        return future

    def task_options(self, **extra: Any) -> Any:
        """The Ray task `run_once` with this executor's options (and `extra`, e.g. a scheduling strategy)."""
        self._start()
        return self._task.options(num_cpus=1, max_retries=self.retries, retry_exceptions=False, **extra)

    def result(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            return future.result()
        except RayTaskError as exc:  # `fn` raised: its own exception
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
        except RayError as exc:  # the worker or node died more often than `retries`, or the task was cancelled
            raise WorkerLost(
                f"Ray could not finish the task ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                f"it was re-run up to {self.retries} times (lab.options.retries); check the cluster's nodes",
            ) from exc
        finally:
            self._forget(future)  # read once: no reference left for Ray to keep or reconstruct

    def _forget(self, future: Future[dict[str, Any]]) -> None:
        self._refs.pop(future, None)
        if hasattr(future, "object_ref"):  # Ray's future keeps its ObjectRef for as long as it lives
            del future.object_ref

    def cancel(self, future: Future[dict[str, Any]]) -> None:
        ref = self._refs.get(future)
        if ref is not None:
            with contextlib.suppress(Exception):
                ray.cancel(ref)  # a queued task never starts; a running one is interrupted and records nothing
        self._forget(future)

    def shutdown(self, wait: bool = True) -> None:
        """Drops queued and running tasks (their experiments stay journaled: a resume runs them) and the
        ledger (its records stay on disk); leaves the cluster only if this executor started or joined it."""
        for ref in self._refs.values():
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        self._refs.clear()
        if self._ledger is not None:
            with contextlib.suppress(Exception):
                ray.kill(self._ledger)
            self._ledger = None
        if self._connected_here:
            ray.shutdown()
            self._connected_here = False

    def runs(self) -> dict[str, int]:
        """Runs recorded per experiment key, read from the ledger's folder."""
        return DayStore(self.record_dir).completed_runs()

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"executor": self.kind, "address": self.address or "local", "retries": self.retries}
        if ray.is_initialized():
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            facts |= {"nodes": len(nodes), "cpus": int(sum(n["Resources"].get("CPU", 0) for n in nodes))}
        return facts
