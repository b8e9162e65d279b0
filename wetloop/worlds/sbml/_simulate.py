"""Running one plan through libroadrunner, segment by segment, and adding measurement noise.

The model is compiled once per process and (model, clamped species) and reset before every run;
between segments the plan's events set or add values, which restarts the integrator there (a clean
discontinuity instead of an integrator stepping over a switch).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from typing import Any

import numpy as np

from ._model import ModelInfo
from ._options import SbmlOptions
from ._schedule import Plan, held_species, plan_of

__all__ = ["SimulationError", "add_noise", "model_initial", "noise_seed", "runner_versions", "simulate"]


class SimulationError(RuntimeError):
    """roadrunner could not run the model for this intervention (the message says why)."""


def runner_versions() -> dict[str, str]:
    import roadrunner

    return {"simulator": "libroadrunner", "roadrunner": roadrunner.__version__}


ABS_TOL_CONC = 1e-12
"""CVODE's absolute tolerance, in concentration units (scaled to amounts by the smallest compartment)."""


@functools.lru_cache(maxsize=8)
def _compiled(sbml: str, clamp: tuple[str, ...]) -> Any:
    """A RoadRunner of the SBML with `clamp` species made boundary species (held where inputs set them)."""
    import roadrunner

    _quiet_sundials()
    for sid in clamp:
        sbml = re.sub(rf'(<species\b[^>]*\bid="{re.escape(sid)}"[^>]*?\bboundaryCondition=")false"', r'\1true"', sbml)
    rr = roadrunner.RoadRunner(sbml)
    _set_tolerances(rr)
    return rr


def _quiet_sundials() -> None:
    """An input switching a clamp makes CVODE restart with a tiny step, and SUNDIALS 7 prints a
    "t + h = t" warning for it to stdout, hundreds per campaign (results unaffected: checked against
    rtol 1e-10); a failed run's error reaches its Observation. So both go to /dev/null, unless the
    user routes them (SUNLOGGER_*_FILENAME is read when an integrator is created)."""
    import roadrunner

    os.environ.setdefault("SUNLOGGER_WARNING_FILENAME", os.devnull)
    os.environ.setdefault("SUNLOGGER_ERROR_FILENAME", os.devnull)
    roadrunner.Logger.setLevel(roadrunner.Logger.LOG_CRITICAL)


def _set_tolerances(rr: Any) -> None:
    """One absolute tolerance for every state variable. roadrunner's default scales a scalar by each
    species' initial amount, which is 0 for a species an input sets to 0 later (CVODE then refuses to
    run) and ~1e-28 in a 4 pl compartment (Huang-Ferrell's cell: "too much accuracy requested")."""
    integrator = rr.getIntegrator()
    n = len(integrator.getAbsoluteToleranceVector())
    volumes = [v for v in rr.model.getCompartmentVolumes() if v > 0]
    if n:
        integrator.setValue("absolute_tolerance", [ABS_TOL_CONC * min(volumes, default=1.0)] * n)


def _selector(info: ModelInfo, sid: str) -> str:
    return f"[{sid}]" if info.symbols[sid].kind == "species" else sid


def model_initial(info: ModelInfo, options: SbmlOptions) -> dict[str, float]:
    """Each input target's value in the model before any input (the default baseline)."""
    rr = _compiled(info.sbml, held_species(options, info))
    rr.resetAll()
    targets = {info.resolve(i.target, "inputs").id for i in options.inputs}
    return {sid: float(rr[_selector(info, sid)]) for sid in targets}


def simulate(info: ModelInfo, options: SbmlOptions, values: dict[str, Any]) -> dict[str, list[float]]:
    """The observed series of one intervention, noise-free. Shapes: each series (T,), T = len(times_min).

    Raises SimulationError when roadrunner fails (a stiff blow-up, a value it refuses).
    """
    per_min = _model_units_per_minute(info, options)
    plan = plan_of(options, info, values, model_initial(info, options))
    rr = _compiled(info.sbml, held_species(options, info))
    observed = [info.resolve(k, "observe").id for k in options.observe]
    try:
        rows = _run(rr, info, plan, options.times_min, observed, per_min)
    except RuntimeError as exc:
        raise SimulationError(f"roadrunner failed: {exc}") from None
    names = list(options.observe.values())
    clean = [np.maximum(r, 0.0) if info.symbols[s].kind == "species" else r for s, r in zip(observed, rows.T)]
    return {n: [float(x) for x in col] for n, col in zip(names, clean)}


def _model_units_per_minute(info: ModelInfo, options: SbmlOptions) -> float:
    from ._options import TIME_UNITS_S

    seconds = TIME_UNITS_S[options.time_unit_override] if options.time_unit_override else info.seconds_per_time_unit
    if seconds is None:
        raise SimulationError(
            f"{info.ref} does not declare its time unit ({info.time_unit}); set "
            "world_options.time_unit_override (s, min, h or day)"
        )
    return 60.0 / seconds


def _run(rr: Any, info: ModelInfo, plan: Plan, times: tuple[float, ...], observed: list[str], per_min: float) -> np.ndarray:
    """Integrate from sample to sample and event to event. Shape: (T, len(observed))."""
    rr.resetAll()
    for sid, v in plan.initial.items():
        rr[_selector(info, sid)] = v
    stops = sorted(set(times) | {e.t_min for e in plan.events})
    events = list(plan.events)
    rows, sample = [], set(times)
    for a, b in zip(stops, [*stops[1:], None]):
        if a in sample:
            rows.append([rr[_selector(info, s)] for s in observed])
        while events and events[0].t_min <= a:
            _apply(rr, info, events.pop(0))
        if b is not None:
            rr.simulate(a * per_min, b * per_min, 2)
    return np.asarray(rows, dtype=float)


def _apply(rr: Any, info: ModelInfo, event: Any) -> None:
    key = _selector(info, event.target)
    rr[key] = event.value if event.op == "set" else rr[key] + event.value


def noise_seed(spec_seed: int, experiment_key: str) -> int:
    """The noise seed of one experiment: a repeat (another key) gets a new sample, a re-poll the same."""
    return int.from_bytes(hashlib.sha256(f"{spec_seed}:{experiment_key}".encode()).digest()[:8], "little")


def add_noise(series: dict[str, list[float]], options: SbmlOptions, seed: int) -> dict[str, list[float]]:
    """Measurement noise (`options.noise`) on every value, floored at 0 (a reading is never negative)."""
    rel, ab = options.noise.relative, options.noise.absolute
    if rel == 0 and ab == 0:
        return series
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(series):  # sorted: the sample does not depend on the mapping's order
        y = np.asarray(series[name])
        sd = np.sqrt((rel * y) ** 2 + ab**2)
        out[name] = [float(v) for v in np.maximum(y + sd * rng.standard_normal(len(y)), 0.0)]
    return {name: out[name] for name in series}
