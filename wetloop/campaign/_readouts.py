"""Readouts of a glucose trajectory, as the lab reports them and the world model must predict them.

These numpy definitions are the reference: the world model's torch outcome model is tested
against them on the same trajectories.
"""

from __future__ import annotations

import numpy as np

from ._records import Observation
from ._spec import CampaignSpec, SafetyLimit

__all__ = ["glucose_readouts", "glucose_range", "unsafe_readout_name", "safety_events", "observed_unsafe", "observed_safe",
           "result_problem"]


def glucose_range(spec: CampaignSpec) -> tuple[float, float]:
    low, high = spec.world_options.get("glucose_range", (70.0, 180.0))
    return float(low), float(high)


def unsafe_readout_name(limit: SafetyLimit) -> str:
    """Readout name of a safety limit's event, e.g. `below_54_glucose` (1.0 when it happened)."""
    return f"below_{limit.below:g}_{limit.series}".replace(".", "_")


def glucose_readouts(glucose: np.ndarray, spec: CampaignSpec) -> dict[str, float]:
    """time_in_range (fraction of samples in the spec's range), min/mean/max glucose, and per
    safety limit on `glucose` an event readout that is 1.0 when any sample fell below its threshold.

    Shape: `glucose` is (T,), equally spaced samples in mg/dL.
    """
    g = np.asarray(glucose, dtype=float)
    low, high = glucose_range(spec)
    out = {
        "time_in_range": float(((g >= low) & (g <= high)).mean()),
        "min_glucose": float(g.min()),
        "mean_glucose": float(g.mean()),
        "max_glucose": float(g.max()),
    }
    for limit in spec.safety:
        if limit.series == "glucose":
            out[unsafe_readout_name(limit)] = float((g < limit.below).any())
    return out


def _event(limit: SafetyLimit, obs: Observation) -> bool | None:
    flag = obs.readouts.get(unsafe_readout_name(limit))
    if flag is not None:
        return flag > 0
    if obs.trajectory is not None and limit.series in obs.trajectory.series:
        return min(obs.trajectory.series[limit.series], default=float("inf")) < limit.below
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
    negative = [] if traj is None else [
        name for name, unit in traj.units.items() if unit in ("mg/dL", "mmol/L") and min(traj.series.get(name, (0.0,))) < 0]
    return f"negative concentrations in {negative}" if negative else None
