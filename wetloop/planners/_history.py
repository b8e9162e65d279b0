"""What the planner reads from the campaign's history and the spec: encodings, run points, best safe result."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, Proposal, Readout, observed_safe, readout_value

__all__ = ["encodable", "encode", "observed_readouts", "safe_results", "safe_utilities", "unique_proposals"]

History = Sequence[tuple[Intervention, Observation]]


def encodable(spec: CampaignSpec) -> bool:
    """Whether every variable has a generic encoding (a categorical variable without choices has none:
    the world decides its names, e.g. a screen's genes)."""
    return all(v.kind != "categorical" or v.choices is not None for v in spec.interventions)


def encode(spec: CampaignSpec, interventions: Sequence[Intervention]) -> Tensor:
    """Interventions -> X (n, d) in [0, 1], d = sum of `Variable.width`: each variable's `encode`
    (unit scale for numbers, one-hot for a choice, item x level indicators for a set), in spec order.

    Used before any world model exists; with one, the planner uses `world.encode`. Check
    `encodable(spec)` first: a categorical variable without choices raises TypeError here.
    """
    width = sum(v.width for v in spec.interventions)
    rows = [[u for v in spec.interventions for u in v.encode(x.values[v.name])] for x in interventions]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), width)


def unique_proposals(proposals: Sequence[Proposal]) -> list[Proposal]:
    """Proposals with repeated interventions (same `Intervention.key()`) dropped, the first kept."""
    seen: set[str] = set()
    kept = []
    for p in proposals:
        key = p.intervention.key()
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


def observed_readouts(observation: Observation, declared: Sequence[Readout] = ()) -> dict[str, float]:
    """The observation's readouts, completed from its trajectory where the lab left some out: each
    declared readout computed from its series, and `min_<series>` / `max_<series>` of every series
    (the extremes safety margins are measured on)."""
    readouts = dict(observation.readouts)
    trajectory = observation.trajectory
    if trajectory is None or not trajectory.times_min:
        return readouts
    times = np.asarray(trajectory.times_min, dtype=float)
    for name, values in trajectory.series.items():
        readouts.setdefault(f"min_{name}", float(np.min(values)))
        readouts.setdefault(f"max_{name}", float(np.max(values)))
    for r in declared:
        if r.series is not None and r.series in trajectory.series:
            readouts.setdefault(r.name, readout_value(r, times, np.asarray(trajectory.series[r.series])))
    return readouts


def safe_results(
    spec: CampaignSpec, history: History, declared: Sequence[Readout] | None = None
) -> list[tuple[Intervention, Observation, float]]:
    """Every 'ok' experiment observed safe (every safety event readout 0.0), with its objective readout,
    in the order they ran.

    An experiment whose safety readouts are missing is not counted: its result cannot be shown safe.
    `declared` readouts (default: the spec's) complete an objective the lab left out (`observed_readouts`).
    """
    out = []
    for intervention, observation in history:
        value = observed_readouts(observation, spec.readouts if declared is None else declared).get(spec.objective.readout)
        if value is not None and observed_safe(spec, observation):
            out.append((intervention, observation, value))
    return out


def safe_utilities(spec: CampaignSpec, history: History, declared: Sequence[Readout] | None = None) -> list[float]:
    """Objective utility of every safe result (`safe_results`)."""
    return [spec.objective.utility(value) for _, _, value in safe_results(spec, history, declared)]
