"""`FunctionLab`: a lab around a scientist's own Python function, kept on disk so a resume runs nothing twice.

The function takes the intervention's values (a dict: numbers, names, and for set variables a dict of
item -> level) and returns either its readouts (`{"yield": 0.42, "toxicity": 0.1}`) or a time course:

    {"times_min": [0, 30, 60], "series": {"x": [0.0, 0.4, 0.7]}, "units": {"x": "uM"}, "readouts": {...}}

Readouts the spec computes from series (and the safety limits' event readouts) are added to what the
function reports. A function that takes a `seed` argument gets one per experiment (the spec's seed
and the experiment key), so a stochastic simulator is reproducible and a repeat is a new sample.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wetloop.campaign import CampaignSpec, Experiment, Observation, Ticket, Trajectory, computed_readouts

from ._disk import DayStore
from ._protocol import Lab
from .errors import LabError, UnknownTicket

__all__ = ["FunctionLab", "load_function"]


def load_function(target: str) -> Callable[..., Any]:
    """`"package.module:name"` or `"path/to/file.py:name"` -> the callable; LabError says what is wrong."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise LabError(f"function {target!r} must be 'module:name' or 'file.py:name'")
    try:
        module = _module(module_name)
    except (ImportError, FileNotFoundError, SyntaxError) as exc:
        raise LabError(f"cannot load {module_name!r} for function {target!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise LabError(f"{module_name!r} has no callable {attr!r}; check world_options.function")
    return fn


def _module(name: str) -> Any:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name).expanduser().resolve()
    spec = importlib.util.spec_from_file_location(f"wetloop_user_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"no Python file at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FunctionLab(Lab):
    """Runs `fn(values)` synchronously at submit; with `cache_dir`, each result is written to disk
    (atomically, keyed by experiment key) before it is reported, so a resumed campaign finds it."""

    def __init__(
        self, spec: CampaignSpec, fn: Callable[..., Any], *, cache_dir: Path | str | None = None, name: str = "function", **_: Any
    ) -> None:
        super().__init__(spec, name)
        self.fn = fn
        self._seeded = "seed" in inspect.signature(fn).parameters
        self.store = DayStore(Path(cache_dir) / "function") if cache_dir is not None else None
        self._results: dict[str, Observation] = {}

    @property
    def runs(self) -> dict[str, int]:
        """Finished runs per experiment key (from disk when the lab keeps a record)."""
        return self.store.completed_runs() if self.store is not None else {k: 1 for k in self._results}

    def _start(self, experiment: Experiment) -> Ticket:
        key = experiment.key
        if self._stored(key) is None:
            obs = self._run(experiment)
            self._results[key] = obs
            if self.store is not None:
                self.store.write_result(key, obs.model_dump(mode="json"))
                self.store.mark_run(key, key)
        return Ticket(experiment_key=key, lab=self.name, lab_ref=f"{self.name}:{key}")

    def _stored(self, key: str) -> Observation | None:
        if key in self._results:
            return self._results[key]
        payload = self.store.read_result(key) if self.store is not None else None
        return None if payload is None else Observation.model_validate(payload)

    def _poll(self, ticket: Ticket) -> Observation | None:
        obs = self._stored(ticket.experiment_key)
        if obs is None:
            raise UnknownTicket(ticket, "this lab has no result for it (a lab without cache_dir forgets on restart)")
        return obs

    def _cancel(self, ticket: Ticket) -> None:
        self._poll(ticket)

    def _shutdown(self) -> None:
        self._results.clear()

    def _run(self, experiment: Experiment) -> Observation:
        key = experiment.key
        try:
            values = json.loads(json.dumps(experiment.intervention.values))  # a copy the function may change
            seed = int(hashlib.sha256(f"{self.spec.seed}:{key}".encode()).hexdigest()[:8], 16)
            result = self.fn(values, seed=seed) if self._seeded else self.fn(values)
            return self._observation(key, result)
        except Exception as exc:  # a failed run is an observation, not a crash of the loop
            return Observation(experiment_key=key, status="failed", message=f"{type(exc).__name__}: {exc}", lab=self.name)

    def _observation(self, key: str, result: Any) -> Observation:
        if not isinstance(result, dict):
            raise TypeError(f"the function must return a dict of readouts or a time course, got {type(result).__name__}")
        if "series" not in result:
            return Observation(experiment_key=key, status="ok", readouts={k: float(v) for k, v in result.items()}, lab=self.name)
        traj = Trajectory(
            times_min=tuple(float(t) for t in result["times_min"]),
            series={k: tuple(float(x) for x in v) for k, v in result["series"].items()},
            units=dict(result.get("units", {})),
        )
        reported = {k: float(v) for k, v in result.get("readouts", {}).items()}
        obs = Observation(experiment_key=key, status="ok", trajectory=traj, readouts=reported, lab=self.name)
        return obs.model_copy(update={"readouts": {**computed_readouts(self.spec, obs), **reported}})
