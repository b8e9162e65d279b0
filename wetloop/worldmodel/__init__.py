"""The world model room: learns `state + intervention -> outcome` from a campaign's results.

Generic machinery any world uses: the vectorised deep ensemble of Gaussian heads (PETS members run
in one call, as TD-MPC2 does), the unit-cube codec of interventions, calibration scores, scores on
held-out experiments (energy distance, declared bounds broken, predicted differences, menu regret),
the additive baseline (`AdditiveModel`), and the two generic families a world gets with no code of its own:

    ScalarWorldModel   scalar readouts from the encoded intervention: a deep ensemble, or a BoTorch GP
                       (mixed continuous/categorical kernel) shown to the planner as an ensemble of draws
    SeriesWorldModel   a probabilistic deep ensemble of one-step dynamics over the declared series, with
                       the world's input schedule as inputs over time; particle rollouts

Both are BoTorch `EnsembleModel`s to the planner, with readouts computed from samples (`SampleOutcome`).
A world's own family lives in its world folder (`wetloop/worlds/<name>/`). Imports only `campaign`;
never ranks.
"""

from ._additive import AdditiveModel
from ._codec import decode, encode
from ._config import torch_threads
from ._ensemble import GaussianEnsemble, TrainRecord, train_ensemble
from ._heldout import (
    Bound,
    OutcomeSamples,
    broken_share,
    declared_bounds,
    difference_scores,
    energy_distance,
    menu_regret,
    sampled_outcomes,
)
from ._metrics import crps_ensemble, interval_coverage
from ._readout_torch import SampleOutcome, limit_event, series_readout
from ._scalar import ScalarEnsembleModel, ScalarFitReport, ScalarModelConfig, ScalarWorldModel
from ._scalar_choice import ChosenScalarModel, held_out_crps
from ._scalar_gp import GPDrawsModel
from ._series import SeriesFitReport, SeriesModelConfig, SeriesWorldModel
from ._series_metrics import SeriesCalibration, SeriesScores, series_calibration
from ._series_rollout import SeriesEnsembleModel
from .errors import ModelFileError, NotFittedError, NoTrainingData, ObservationFormatError, WorldModelError

__all__ = [
    "AdditiveModel",
    "Bound",
    "OutcomeSamples",
    "broken_share",
    "declared_bounds",
    "difference_scores",
    "energy_distance",
    "menu_regret",
    "sampled_outcomes",
    "ChosenScalarModel",
    "held_out_crps",
    "GPDrawsModel",
    "GaussianEnsemble",
    "ModelFileError",
    "NoTrainingData",
    "NotFittedError",
    "ObservationFormatError",
    "SampleOutcome",
    "ScalarEnsembleModel",
    "ScalarFitReport",
    "ScalarModelConfig",
    "ScalarWorldModel",
    "SeriesCalibration",
    "SeriesEnsembleModel",
    "SeriesFitReport",
    "SeriesModelConfig",
    "SeriesScores",
    "SeriesWorldModel",
    "TrainRecord",
    "WorldModelError",
    "crps_ensemble",
    "decode",
    "encode",
    "interval_coverage",
    "limit_event",
    "series_calibration",
    "series_readout",
    "torch_threads",
    "train_ensemble",
]
