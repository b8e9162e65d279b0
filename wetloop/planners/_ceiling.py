"""The objective's ceiling: the best value its readout can take, and whether the campaign has reached it.

Once the best safe result sits at the ceiling, no experiment can improve on it: expected improvement is
0 for every candidate, and what the campaign does next is the spec's `at_ceiling.action`. A ceiling is
known where the readout's bounds are (`Readout.bounds`: fractions of a time course and binary readouts
in [0, 1], a statistic of a series with declared bounds, declared `lower` / `upper`), and always for a
`target` objective (the target itself, or the bound nearest it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wetloop.campaign import CampaignSpec, Intervention, Observation, Readout, Series

from ._history import safe_results

__all__ = ["Ceiling", "objective_ceiling", "reached_ceiling"]

History = Sequence[tuple[Intervention, Observation]]


@dataclass(frozen=True)
class Ceiling:
    """The first safe result whose objective readout reached the ceiling (within the spec's tolerance)."""

    readout: str
    best: float  # its objective readout
    ceiling: float  # the best value the readout can take
    intervention: Intervention
    experiment_key: str

    def describe(self, spec: CampaignSpec) -> str:
        objective = spec.objective
        goal = {"maximize": "highest", "minimize": "lowest"}.get(objective.direction) or f"nearest to {objective.target_value:g}"
        return (
            f"{self.readout} = {self.best:.4g} ({self.intervention.describe(spec)}) is at the {goal} value it can take "
            f"({self.ceiling:g}{f' within {spec.at_ceiling.tolerance:g}' if spec.at_ceiling.tolerance else ''}): "
            "no experiment can improve on it"
        )


def objective_ceiling(spec: CampaignSpec, readouts: Sequence[Readout] = (), series: Sequence[Series] = ()) -> float | None:
    """The best value the objective's readout can take, from its declaration among `readouts` (the world's;
    the spec's own when empty) and its series' among `series`; None when no bound is known that way."""
    declared = next((r for r in (readouts or spec.readouts) if r.name == spec.objective.readout), None)
    if declared is None:
        lower = upper = None
    else:
        of = next((s for s in (series or spec.series) if s.name == declared.series), None)
        lower, upper = declared.bounds(of)
    return spec.objective.best_value(lower, upper)


def reached_ceiling(
    spec: CampaignSpec, history: History, readouts: Sequence[Readout] = (), series: Sequence[Series] = ()
) -> Ceiling | None:
    """The first safe result of `history` at the objective's ceiling (within `spec.at_ceiling.tolerance`),
    or None: no ceiling is known, or no safe result has reached it."""
    ceiling = objective_ceiling(spec, readouts, series)
    if ceiling is None:
        return None
    top = spec.objective.utility(ceiling) - spec.at_ceiling.tolerance
    for intervention, observation, value in safe_results(spec, history, readouts or None):
        if spec.objective.utility(value) >= top:
            return Ceiling(spec.objective.readout, value, ceiling, intervention, observation.experiment_key)
    return None
