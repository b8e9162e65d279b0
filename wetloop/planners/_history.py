"""What the planner reads from the campaign's history: which points were run, and the best safe result."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, Proposal, glucose_readouts, observed_safe

__all__ = ["encode", "unique_proposals", "observed_readouts", "safe_utilities"]

History = Sequence[tuple[Intervention, Observation]]


def encode(spec: CampaignSpec, interventions: Sequence[Intervention]) -> Tensor:
    """Interventions -> unit-cube X (n, d), columns in spec order (the world model's own encoding).

    Used before any world model exists; with one, the planner uses `world.encode`.
    """
    rows = [[v.to_unit(x.values[v.name]) for v in spec.interventions] for x in interventions]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(spec.interventions))


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


def observed_readouts(observation: Observation, spec: CampaignSpec) -> dict[str, float]:
    """The observation's readouts, completed from its glucose trajectory where the lab left some out."""
    readouts = dict(observation.readouts)
    trajectory = observation.trajectory
    if trajectory is not None and "glucose" in trajectory.series:
        for name, value in glucose_readouts(np.asarray(trajectory.series["glucose"]), spec).items():
            readouts.setdefault(name, value)
    return readouts


def safe_utilities(spec: CampaignSpec, history: History) -> list[float]:
    """Objective utility of every 'ok' experiment observed safe (every safety event readout 0.0).

    An experiment whose safety readouts are missing is not counted: its result cannot be shown safe.
    """
    utilities = []
    for _, observation in history:
        readouts = observed_readouts(observation, spec)
        if spec.objective.readout in readouts and observed_safe(spec, observation):
            utilities.append(spec.objective.utility(readouts[spec.objective.readout]))
    return utilities
