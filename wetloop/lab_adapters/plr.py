"""`PlateLab`: experiments as wells of a 96-well plate (`pip install "wetloop[pylabrobot]"`).

A PyLabRobot liquid handler doses the wells and a plate reader reads them, on PyLabRobot's simulated
backends; what a well reads comes from a built-in world. One plate run:

    1. layout     the experiments accepted since the last run (up to 96) get wells A1, B1 ... H1, A2 ...
    2. dosing     per well, every variable's stock in proportion to its value, diluent to the total
                  volume (see `_plate_deck`); a PyLabRobot tip or volume error fails that experiment
                  with a `TipError` / `VolumeError` naming it, and the other wells go on
    3. incubation the world (e.g. simglucose: one patient-day per well) runs each dosed well's intervention
    4. reading    the plate goes to the reader; each well reads the world's value of the objective readout
    5. results    each well's Observation: the world's trajectory and readouts, the objective as read,
                  and the plate record (plate, well, volumes, steps) in `raw`

A plate starts at the first poll after its experiments were submitted and runs in a background
thread: polls return None until the whole plate has been read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pylabrobot.resources import Plate

from wetloop.campaign import CampaignSpec, Experiment, LabRef, Observation, Ticket

from ._disk import DayStore
from ._plate_deck import WELLS_PER_PLATE, Deck, PlateOptions, WellJob, check_doseable, dose_volumes
from ._protocol import Lab, wait_for
from ._registry import make_lab
from .errors import LabError, LiquidHandlingError, UnknownTicket

__all__ = ["PlateLab", "PlateOptions", "serve_for_bench"]

log = logging.getLogger("wetloop.lab_adapters.pylabrobot")


class PlateLab(Lab):
    """A plate-based lab: a simulated PyLabRobot liquid handler and plate reader around a world.

    Args:
        spec: the campaign; every variable must be continuous and non-negative (it is dosed from a stock).
        cache_dir: where the world caches its runs and this lab journals submissions and keeps results,
            so a new instance answers an earlier one's tickets.
        workers: the world's parallel workers (e.g. simglucose processes).
        world: the lab that plays the biology of a well (default: `make_lab` of the spec's local world,
            closed with this lab; a world passed in is the caller's to close).
        name: the lab's name, written on its tickets.
        **options: `PlateOptions` (total_volume_ul, max_stock_volume_ul, stock_volume_ul, tip_volume_ul,
            tip_racks, tips, wavelength_nm); an unknown or invalid one raises `LabError`.

    `errors[key]` keeps the `TipError` / `VolumeError` of each experiment that failed on the deck;
    `deck` is the PyLabRobot set-up (its `lh`, `backend.commands`, `tip_racks`, `troughs`, `reader`).
    """

    options_model = PlateOptions  # its `**options`, checked with the spec before anything is written

    def __init__(
        self,
        spec: CampaignSpec,
        *,
        cache_dir: Path | str | None = None,
        workers: int | None = None,
        world: Lab | None = None,
        name: str = "pylabrobot",
        **options: Any,
    ) -> None:
        super().__init__(spec, name)
        self.options = _plate_options(options)
        check_doseable(spec, self.options)
        self._owns_world = world is None  # a world passed in is the caller's to close
        local = spec.with_overrides(lab=LabRef())
        self.world = world if world is not None else make_lab(local, cache_dir=cache_dir, workers=workers)
        self.deck = Deck(spec, self.options)
        self.errors: dict[str, LiquidHandlingError] = {}
        self._store = DayStore(Path(cache_dir) / "plates") if cache_dir is not None else None
        self._lock = threading.Lock()  # the queue and results are shared with the plate thread
        self._queue: dict[str, Experiment] = {}  # accepted, waiting for a plate, in submission order
        self._on_plate: set[str] = set()
        self._dropped: set[str] = set()  # cancelled while their plate ran: their results are not kept
        self._results: dict[str, Observation] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wetloop-plate")
        self._loop = asyncio.new_event_loop()  # PyLabRobot is async: its calls run here, in the plate thread
        self._running: Future[None] | None = None
        self._plates = 0
        self._on_deck(self.deck.setup)  # the robot is set up when the lab opens, as an instrument would be

    # -- the protocol ---------------------------------------------------------------------------
    def _start(self, experiment: Experiment) -> Ticket:
        if self._store is not None:
            self._store.write_journal(experiment, self.spec)
        with self._lock:
            self._queue[experiment.key] = experiment
        return Ticket(experiment_key=experiment.key, lab=self.name, lab_ref=f"{self.name}:{experiment.key}")

    def _poll(self, ticket: Ticket) -> Observation | None:
        key = ticket.experiment_key
        with self._lock:
            result, known = self._results.get(key), key in self._queue or key in self._on_plate
        if result is not None:
            return result
        if not known:
            return self._recover(ticket)
        self._next_plate()
        return None

    def _cancel(self, ticket: Ticket) -> None:
        """A queued experiment leaves the queue; one on a running plate finishes, and its result is dropped."""
        key = ticket.experiment_key
        with self._lock:
            known = key in self._queue or key in self._on_plate or key in self._results
            self._queue.pop(key, None)
            self._results.pop(key, None)
            if key in self._on_plate:
                self._dropped.add(key)
        if self._store is not None:
            known = known or self._store.read_journal(key) is not None
            self._store.drop_journal(key)
            self._store.result_path(key).unlink(missing_ok=True)
        if not known:
            raise UnknownTicket(ticket, "no plate, queue or journal holds it")

    def _shutdown(self) -> None:
        """The running plate finishes; queued experiments stay journaled for the next instance."""
        try:
            self._on_deck(self.deck.stop)
        finally:
            self._thread.submit(self._loop.close).result()
            self._thread.shutdown(wait=True, cancel_futures=True)
            if self._owns_world:
                self.world.close()

    def _on_deck(self, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a deck coroutine on the deck's loop, in the plate thread (after any running plate)."""
        self._thread.submit(lambda: self._loop.run_until_complete(step())).result()

    # -- plates ---------------------------------------------------------------------------------
    def _next_plate(self) -> None:
        """Start a plate with the queued experiments unless one is running."""
        with self._lock:
            if (self._running is not None and not self._running.done()) or not self._queue:
                return
            batch = [self._queue.pop(k) for k in list(self._queue)[:WELLS_PER_PLATE]]
            self._on_plate.update(e.key for e in batch)
            self._running = self._thread.submit(self._run_plate, batch)

    def _run_plate(self, batch: list[Experiment]) -> None:
        self._plates += 1
        try:
            results = self._loop.run_until_complete(self._plate(self._plates, batch))
        except Exception as exc:  # a broken world or a bug: the plate's experiments fail, the lab stays usable
            log.exception("plate %d failed", self._plates)
            message = f"the plate run failed: {type(exc).__name__}: {exc}; cancel and submit again to retry"
            results = {e.key: Observation(experiment_key=e.key, status="failed", message=message, lab=self.name) for e in batch}
        self._publish(results)

    async def _plate(self, number: int, batch: list[Experiment]) -> dict[str, Observation]:
        plate = self.deck.load(number)
        wells = plate.get_all_items()  # A1, B1 ... H1, A2 ...: column by column
        jobs = [WellJob(e.key, well, dose_volumes(self.spec, self.options, e.intervention)) for e, well in zip(batch, wells)]
        failed = await self._dose(jobs)
        world = self._incubate([e for e in batch if e.key not in failed])
        values = {j.well.name: v for j in jobs if (v := self._objective(world.get(j.experiment_key))) is not None}
        reads = await self.deck.read(plate, values)
        log.info("%s: %d well(s) dosed, %d failed on the deck", plate.name, len(jobs) - len(failed), len(failed))
        return {
            j.experiment_key: self._well(plate, j, failed.get(j.experiment_key), world.get(j.experiment_key), reads[j.well.name])
            for j in jobs
        }

    async def _dose(self, jobs: list[WellJob]) -> dict[str, LiquidHandlingError]:
        failed = {}
        for job in jobs:
            try:
                await self.deck.prepare(job)
            except LiquidHandlingError as exc:
                log.warning("%s", exc)
                failed[job.experiment_key] = exc
        return failed

    def _incubate(self, experiments: list[Experiment]) -> dict[str, Observation]:
        """Run each dosed well's intervention on the world (blocking this thread: the plate waits for it)."""
        observations = wait_for(self.world, [self.world.submit(e) for e in experiments])
        return {o.experiment_key: o for o in observations}

    def _objective(self, observation: Observation | None) -> float | None:
        if observation is None or observation.status != "ok":
            return None
        return observation.readouts.get(self.spec.objective.readout)

    def _well(
        self, plate: Plate, job: WellJob, error: LiquidHandlingError | None, world: Observation | None, read: float | None
    ) -> Observation:
        """The Observation of one well: its deck failure, the world's own failure, or the world's result as read."""
        key = job.experiment_key
        record = {"plate": plate.name, "well": job.well_id, "volumes_ul": job.volumes, "steps": job.steps}
        if error is not None:
            self.errors[key] = error
            cause = f"{type(error.cause).__name__}: {error.cause}"
            raw = {**record, "error": type(error).__name__, "step": error.step, "cause": cause}
            return Observation(experiment_key=key, status="failed", message=str(error), lab=self.name, raw=raw)
        assert world is not None  # every dosed well was incubated
        if world.status != "ok" or read is None:
            return world.model_copy(update={"lab": self.name, "raw": {**record, "world": world.raw}})
        readouts = {**world.readouts, self.spec.objective.readout: read}
        timing: dict[str, Any] = {
            k: world.raw[k] for k in ("started_at", "finished_at") if k in world.raw
        }  # benchmarks read when it ran
        reader = {"wavelength_nm": self.options.wavelength_nm, "value": read}
        raw = {**record, **timing, "reader": reader, "world": world.raw}
        return Observation(
            experiment_key=key, status="ok", trajectory=world.trajectory, readouts=readouts, lab=self.name, raw=raw
        )

    def _publish(self, results: dict[str, Observation]) -> None:
        with self._lock:
            kept = {k: o for k, o in results.items() if k not in self._dropped}
            self._dropped.difference_update(results)
        if self._store is not None:
            for key, observation in kept.items():
                self._store.write_result(key, observation.model_dump(mode="json"))
        with self._lock:
            self._results.update(kept)
            self._on_plate.difference_update(results)

    # -- tickets of an earlier instance ---------------------------------------------------------
    def _recover(self, ticket: Ticket) -> Observation | None:
        """A ticket this instance did not issue: its stored result, or its journaled experiment queued again."""
        key = ticket.experiment_key
        stored = self._store.read_result(key) if self._store is not None else None
        if stored is not None:
            observation = Observation.model_validate(stored)
            with self._lock:
                self._results[key] = observation
            return observation
        journaled = self._store.read_journal(key) if self._store is not None else None
        if journaled is None:
            raise UnknownTicket(ticket, "no plate, queue or journal under cache_dir holds it")
        with self._lock:
            self._queue[key] = journaled[0]
        self._next_plate()
        return None


def _plate_options(options: dict[str, Any]) -> PlateOptions:
    try:
        return PlateOptions(**options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        known = ", ".join(PlateOptions.model_fields)
        raise LabError(f"pylabrobot lab options are invalid: {problems}. Valid options: {known}") from None


@contextlib.contextmanager
def serve_for_bench(spec: CampaignSpec, work_dir: Path, *, workers: int | None = None) -> Iterator[dict[str, Any]]:
    """`wetloop bench adapters`: PlateLab runs in-process (the world under the campaign's cache_dir),
    so there is no server to start and no option to pass."""
    yield {}
