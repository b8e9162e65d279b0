"""Readouts computed from an observation's time courses, and the safety events of a result.

These numpy definitions are the reference: the world model's torch readouts (`worldmodel.series_readout`)
are tested against them on the same trajectories. A world's own readouts live in its folder.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._records import Observation
from ._spec import CampaignSpec, Readout, SafetyLimit

__all__ = [
    "unsafe_readout_name",
    "safety_events",
    "observed_unsafe",
    "observed_safe",
    "result_problem",
    "readout_value",
    "computed_readouts",
    "event_happened",
]


def unsafe_readout_name(limit: SafetyLimit) -> str:
    """Readout name of a safety limit's event, e.g. `below_54_glucose` (1.0 when it happened);
    `above_0.8_x`, `outside_0.01_0.8_x` for upper and two-sided limits."""
    if limit.above is None:
        name = f"below_{limit.below:g}_{limit.target}"
    elif limit.below is None:
        name = f"above_{limit.above:g}_{limit.target}"
    else:
        name = f"outside_{limit.below:g}_{limit.above:g}_{limit.target}"
    return name.replace(".", "_").replace("-", "m")


def event_happened(limit: SafetyLimit, values: np.ndarray) -> bool:
    """Did any of `values` (a series' samples, or one readout value) cross the limit?"""
    v = np.asarray(values, dtype=float)
    low = limit.below is not None and bool((v < limit.below).any())
    high = limit.above is not None and bool((v > limit.above).any())
    return low or high


def readout_value(readout: Readout, times_min: np.ndarray, values: np.ndarray) -> float:
    """One computed readout of one series' time course. Shapes: times_min, values (T,)."""
    t, v = np.asarray(times_min, dtype=float), np.asarray(values, dtype=float)
    stat = readout.stat
    if stat == "final":
        return float(v[-1])
    if stat in ("min", "max", "mean"):
        return float(getattr(v, stat)())
    if stat == "auc":
        return float(np.sum((v[1:] + v[:-1]) * np.diff(t)) / 2.0) if len(v) > 1 else 0.0
    if stat == "time_in_range":
        return float(((v >= readout.low) & (v <= readout.high)).mean())
    if stat == "time_above":
        return float((v > readout.threshold).mean())
    if stat == "time_below":
        return float((v < readout.threshold).mean())
    raise ValueError(f"readout {readout.name!r} has stat {stat!r}, which is not computed from a series")


def computed_readouts(spec: CampaignSpec, obs: Observation, readouts: Iterable[Readout] | None = None) -> dict[str, float]:
    """The readouts computed from the observation's trajectory (those whose series it holds), and an
    event readout (1.0 / 0.0) per safety limit on a series it holds. `readouts`: which to compute
    (a world's, `World.readouts(spec)`); default the spec's own."""
    traj = obs.trajectory
    out: dict[str, float] = {}
    if traj is None:
        return out
    times = np.asarray(traj.times_min, dtype=float)
    for readout in spec.readouts if readouts is None else readouts:
        if readout.series is not None and readout.series in traj.series and len(times):
            out[readout.name] = readout_value(readout, times, np.asarray(traj.series[readout.series]))
    for limit in spec.safety:
        if limit.series is not None and limit.series in traj.series and len(times):
            out[unsafe_readout_name(limit)] = float(event_happened(limit, np.asarray(traj.series[limit.series])))
    return out


def _event(limit: SafetyLimit, obs: Observation) -> bool | None:
    flag = obs.readouts.get(unsafe_readout_name(limit))
    if flag is not None:
        return flag > 0
    if limit.readout is not None and limit.readout in obs.readouts:
        return event_happened(limit, np.asarray([obs.readouts[limit.readout]]))
    if obs.trajectory is not None and limit.series is not None and limit.series in obs.trajectory.series:
        return event_happened(limit, np.asarray(obs.trajectory.series[limit.series]))
    return None


def safety_events(spec: CampaignSpec, obs: Observation) -> list[bool | None]:
    """Per safety limit of the spec: did this experiment cross it? From the lab's event readout, else
    from its trajectory of the limit's series; None when the lab reported neither."""
    return [_event(limit, obs) for limit in spec.safety]


def observed_unsafe(spec: CampaignSpec, obs: Observation) -> bool:
    """An ok experiment that crossed at least one safety limit."""
    return obs.status == "ok" and any(e is True for e in safety_events(spec, obs))


def observed_safe(spec: CampaignSpec, obs: Observation) -> bool:
    """An ok experiment shown to respect every safety limit (a missing event is not shown safe)."""
    return obs.status == "ok" and all(e is False for e in safety_events(spec, obs))


def result_problem(key: str, obs: Observation, spec: CampaignSpec) -> str | None:
    """Why a schema-valid result cannot be stored as the result of experiment `key` (None when it can):
    it names another experiment, an 'ok' result lacks a finite objective readout, or a trajectory
    reports a negative concentration. Every way a result arrives (a lab adapter, the loop) checks this."""
    if obs.experiment_key != key:
        return f"it is the result of experiment {obs.experiment_key!r}, expected {key!r}"
    if obs.status != "ok":
        return None
    value = obs.readouts.get(spec.objective.readout)
    if value is None or not np.isfinite(value):
        return f"an 'ok' result without a finite {spec.objective.readout!r} readout"
    traj = obs.trajectory
    if traj is None:
        return None
    negative = [
        name for name, unit in traj.units.items() if unit in ("mg/dL", "mmol/L") and min(traj.series.get(name, (0.0,))) < 0
    ]
    if negative:
        return f"negative concentrations in {negative}"
    outside = [
        s.name
        for s in spec.series
        if s.name in traj.series
        and traj.series[s.name]
        and (
            (s.lower is not None and min(traj.series[s.name]) < s.lower - 1e-9)
            or (s.upper is not None and max(traj.series[s.name]) > s.upper + 1e-9)
        )
    ]
    return f"series {outside} leave their declared physical bounds" if outside else None
