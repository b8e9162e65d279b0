"""The planner room: ranks candidate experiments with BoTorch acquisitions over an ensemble world model.

`Planner.rank(proposals, world, history, round) -> campaign.Ranking`: a safety filter on the
predicted P(unsafe), then (ei_weight * EI + ig_weight * IG) / cost with each candidate's own cost
and IG on the readouts decisions use (objective, safety margins), and a batch of
`spec.budget.batch` picked greedily with `optimize_acqf_discrete`, never one already run.
Before any world model exists, a space-filling batch. Never trains anything.
"""

from ._acquisition import (
    CostWeightedAcquisition,
    EnsembleExpectedImprovement,
    EnsembleInformationGain,
    ReadoutObjective,
    ensemble_information_gain,
)
from ._ceiling import Ceiling, objective_ceiling, reached_ceiling
from ._config import PlannerConfig
from ._features import Feature, ReadoutFeatures, readout_features
from ._menu import EnsembleEnumerationSampler, MenuCost, MenuModel
from ._planner import Planner
from ._protocols import KnowsCeiling, OutcomeLike, WorldLike
from ._spacefill import MaxMinDistance, space_filling_batch
from .errors import EmptyMenu, PlannerError, WorldModelMismatch

__all__ = [
    "Ceiling",
    "KnowsCeiling",
    "objective_ceiling",
    "reached_ceiling",
    "CostWeightedAcquisition",
    "EmptyMenu",
    "EnsembleEnumerationSampler",
    "EnsembleExpectedImprovement",
    "EnsembleInformationGain",
    "Feature",
    "MaxMinDistance",
    "MenuCost",
    "MenuModel",
    "OutcomeLike",
    "Planner",
    "PlannerConfig",
    "PlannerError",
    "ReadoutFeatures",
    "ReadoutObjective",
    "WorldLike",
    "WorldModelMismatch",
    "ensemble_information_gain",
    "readout_features",
    "space_filling_batch",
]
