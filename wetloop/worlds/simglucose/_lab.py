"""`SimglucoseLab`: the virtual patient of the default campaign (simglucose 0.2.11, UVA/Padova T1D).

One experiment is one simulated day (~7 s of one core for 24 h). The days of a batch run in
parallel, in spawn-started processes or as Ray tasks (`lab.options.executor`); finished days are
cached on disk; accepted submissions are journaled, so a new instance (after the parent was killed)
answers the tickets of an old one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Observation, Ticket, Trajectory
from wetloop.lab_adapters import DayStore, Executor, Lab, LabSettings, ProcessExecutor, executor_options, make_executor
from wetloop.lab_adapters.errors import UnknownTicket

from ._days import campaign_day_seed
from ._options import DayOptions, day_key, day_options, world_fingerprint
from ._readouts import glucose_readouts
from ._simday import run_day_job, watch_parent

__all__ = ["SimglucoseLab", "reference_day", "days_of"]

_DAY_KEY = re.compile(r"^[0-9a-f]{24}$")


class SimglucoseLab(Lab):
    """Runs each experiment as one day of the spec's virtual patient under the campaign's regimen.

    Args:
        spec: the campaign; `world_options` name the patient, sensor, pump, hours and meals.
            They are checked here, so a bad option fails before anything is submitted.
        cache_dir: where days, the journal and run markers live (default: `LabSettings.cache_dir`,
            env `WETLOOP_LAB_CACHE_DIR`, else `~/.cache/wetloop/labs`); days are kept under
            a subfolder per simulator version and patient set (`world_fingerprint`).
        workers: processes simulating days in parallel (default: `WETLOOP_LAB_WORKERS`, else one per CPU);
            with the ray executor, the CPUs of the local cluster it starts when given no address.
        name: the lab's name, written on its tickets.
        executor: runs the days (shared by several labs, e.g. a benchmark's; it is not shut down with
            this lab); default: the one `spec.lab.options` and `LabSettings` ask for (`make_executor`).

    Guarantees beyond `Lab`'s: a day already on disk returns without simulating; a day is simulated
    at most once per cache_dir, even across instances and processes (per-day file lock); a ticket of
    an earlier instance sharing `cache_dir` is answered, and its run restarted if it never finished.
    On Ray, the days run once by experiment key across nodes too: the ledger on this machine records
    each under `<cache_dir>/<fingerprint>/records` (`wetloop.lab_adapters._ray`).
    """

    def __init__(
        self,
        spec: CampaignSpec,
        *,
        cache_dir: Path | str | None = None,
        workers: int | None = None,
        name: str = "simglucose",
        settings: LabSettings | None = None,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(spec, name)
        settings = settings or LabSettings()
        self.options: DayOptions = day_options(spec)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else settings.cache_dir
        self.workers = workers or settings.workers or os.cpu_count() or 1
        self.store = DayStore(self.cache_dir / world_fingerprint())
        self._owns_executor = executor is None
        self.executor = executor or make_executor(
            executor_options(spec),
            settings,
            workers=self.workers,
            record_dir=self.store.root / "records",
            initializer=watch_parent,
            initargs=(os.getpid(),),
        )
        self._futures: dict[str, Future[dict[str, Any]]] = {}
        self._done: dict[str, Observation] = {}

    # -- public extras --------------------------------------------------------------------------
    def completed_runs(self) -> dict[str, int]:
        """Simulations that finished, per experiment key, across every instance sharing cache_dir."""
        return self.store.completed_runs()

    def journal_keys(self) -> set[str]:
        """Experiment keys accepted (and not cancelled) by any instance sharing cache_dir."""
        return self.store.journal_keys()

    # -- the protocol ---------------------------------------------------------------------------
    def _start(self, experiment: Experiment) -> Ticket:
        if self.store.read_journal(experiment.key) is None:  # an earlier instance may have accepted it
            self.store.write_journal(experiment, self.spec)
        self._ensure_running(experiment, self.spec)
        return Ticket(experiment_key=experiment.key, lab=self.name, lab_ref=self._day_key(experiment, self.spec))

    def _poll(self, ticket: Ticket) -> Observation | None:
        key = ticket.experiment_key
        if key in self._done:
            return self._done[key]
        future = self._futures.get(key)
        if future is not None:
            return self._finish(ticket, future) if future.done() else None
        day = self.store.read_result(self._ref(ticket))
        if day is not None:
            return self._remember(self._observation(key, day, "hit"))
        self._recover(ticket)
        return None

    def _cancel(self, ticket: Ticket) -> None:
        key = ticket.experiment_key
        if key not in self._futures and key not in self._done and self.store.read_journal(key) is None:
            raise UnknownTicket(ticket, "no run and no journal entry under cache_dir")
        future = self._futures.pop(key, None)
        if future is not None:
            self.executor.cancel(future)  # stops a queued day; a running one may still finish into the cache
        self._done.pop(key, None)
        self.store.drop_journal(key)

    def _shutdown(self) -> None:
        """Queued days are dropped but stay journaled; running ones finish into the cache (worker processes)
        or are dropped too (Ray). A shared executor is left to its owner."""
        if self._owns_executor:
            self.executor.shutdown(wait=True)

    # -- running days ---------------------------------------------------------------------------
    def _ensure_running(self, experiment: Experiment, spec: CampaignSpec) -> None:
        key = experiment.key
        if key in self._futures or key in self._done:
            return
        if self.store.read_result(self._day_key(experiment, spec)) is not None:
            return  # on disk already: poll answers from the cache
        self._futures[key] = self.executor.submit(key, run_day_job, self._job(experiment, spec))

    def _recover(self, ticket: Ticket) -> None:
        """A journaled day with no result: its run was interrupted (or queued at close); restart it."""
        journaled = self.store.read_journal(ticket.experiment_key)
        if journaled is None:
            raise UnknownTicket(ticket, f"no result and no journal entry under {self.store.root}")
        self._ensure_running(*journaled)
        return None

    def _finish(self, ticket: Ticket, future: Future[dict[str, Any]]) -> Observation:
        key = ticket.experiment_key
        del self._futures[key]
        try:
            result = self.executor.result(future)
        except Exception as exc:  # the simulator raised, or its worker died (WorkerLost): report it, keep the loop alive
            return self._remember(self._failed(key, exc))
        return self._remember(self._observation(key, result["day"], result["cache"]))

    def _job(self, experiment: Experiment, spec: CampaignSpec) -> dict[str, Any]:
        return {
            "spec": spec.model_dump_json(),
            "values": experiment.intervention.canonical(),
            "controller": "regimen",
            "root": str(self.store.root),
            "experiment_key": experiment.key,
            "day_seed": self._day_seed(experiment, spec),
        }

    def _day_seed(self, experiment: Experiment, spec: CampaignSpec) -> int | None:
        """When the spec's days vary, the day this experiment runs on (drawn from its key)."""
        options = self.options if spec is self.spec else day_options(spec)
        return campaign_day_seed(spec.seed, experiment.key) if options.variation is not None else None

    def _day_key(self, experiment: Experiment, spec: CampaignSpec) -> str:
        options = self.options if spec is self.spec else day_options(spec)
        return day_key(options, experiment.intervention, spec.seed, "regimen", self._day_seed(experiment, spec))

    def _ref(self, ticket: Ticket) -> str:
        if not _DAY_KEY.match(ticket.lab_ref):
            raise UnknownTicket(ticket, "its lab_ref is not a simulated day's key")
        return ticket.lab_ref

    # -- observations ---------------------------------------------------------------------------
    def _remember(self, observation: Observation) -> Observation:
        self._done[observation.experiment_key] = observation
        return observation

    def _observation(self, key: str, day: dict[str, Any], cache: str) -> Observation:
        return observation_of(key, day, cache, self.spec, self.name)

    def _failed(self, key: str, exc: BaseException) -> Observation:
        message = f"the simulation raised {type(exc).__name__}: {exc}; cancel and submit again to retry"
        return Observation(experiment_key=key, status="failed", message=message, lab=self.name)


def observation_of(key: str, day: dict[str, Any], cache: str, spec: CampaignSpec, lab: str) -> Observation:
    """An Observation from a stored day; readouts are recomputed for `spec` (its range and limits)."""
    raw = {**day["raw"], "cache": cache}
    try:
        trajectory = Trajectory.model_validate(day["trajectory"])
    except ValidationError as exc:  # e.g. the simulator produced non-finite glucose
        return Observation(experiment_key=key, status="failed", message=f"unusable trajectory: {exc}", lab=lab, raw=raw)
    readouts = glucose_readouts(np.asarray(trajectory.series["glucose"]), spec)
    return Observation(experiment_key=key, status="ok", trajectory=trajectory, readouts=readouts, lab=lab, raw=raw)


def days_of(
    spec: CampaignSpec,
    intervention: Intervention | None,
    day_seeds: Sequence[int | None],
    *,
    cache_dir: Path | str | None = None,
    workers: int | None = None,
) -> list[Observation]:
    """Days of the spec's patient with the given seeds, under `intervention` (the reference controller
    when None), simulated in parallel and cached like the lab's: how a regimen is scored on days no
    campaign ran (`held_out_seeds`). A failed day comes back as a "failed" Observation."""
    options = day_options(spec)  # a clear WorldOptionError before anything runs
    root = Path(cache_dir) if cache_dir is not None else LabSettings().cache_dir
    store = DayStore(root / world_fingerprint())
    controller = "reference" if intervention is None else "regimen"
    values = None if intervention is None else intervention.canonical()
    jobs = [
        {"spec": spec.model_dump_json(), "values": values, "controller": controller, "root": str(store.root), "day_seed": s}
        for s in day_seeds
    ]
    workers = workers or LabSettings().workers or os.cpu_count() or 1
    pool = ProcessExecutor(min(workers, max(len(jobs), 1)), watch_parent, (os.getpid(),))
    out: list[Observation] = []
    try:
        futures = [pool.submit(f"{controller}-{seed}", run_day_job, job) for seed, job in zip(day_seeds, jobs)]
        for seed, future in zip(day_seeds, futures):
            key = f"{controller}-{options.patient}-day{seed}"
            try:
                result = pool.result(future)
            except Exception as exc:  # one failed day is reported, the others kept
                out.append(
                    Observation(experiment_key=key, status="failed", message=f"{type(exc).__name__}: {exc}", lab=controller)
                )
                continue
            out.append(observation_of(key, result["day"], result["cache"], spec, f"simglucose-{controller}"))
    finally:
        pool.shutdown(wait=True)
    return out


def reference_day(spec: CampaignSpec, *, cache_dir: Path | str | None = None, settings: LabSettings | None = None) -> Observation:
    """The spec's day under simglucose's own BBController, which doses with the patient's TRUE
    basal rate, carb ratio and correction factor: the benchmark's reference, never shown to the campaign.

    Runs in this process (imports simglucose here) and shares the lab's cache. The Observation has
    the same trajectory format and readouts as `SimglucoseLab`'s; `raw["reference"]` holds the regimen.
    """
    day_options(spec)  # a clear WorldOptionError before anything runs
    root = Path(cache_dir) if cache_dir is not None else (settings or LabSettings()).cache_dir
    store = DayStore(root / world_fingerprint())
    job = {"spec": spec.model_dump_json(), "values": None, "controller": "reference", "root": str(store.root)}
    result = run_day_job(job)
    return observation_of(f"reference-{result['day_key']}", result["day"], result["cache"], spec, "simglucose-reference")
