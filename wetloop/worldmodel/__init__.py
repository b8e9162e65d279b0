"""The world model: learns `state + intervention -> next state` from observed glucose days.

A deep ensemble of probabilistic dynamics models (PETS), its members vectorised in one module
(TD-MPC2), rolls candidate regimens forward with particles and is shown to the planner as a BoTorch
`EnsembleModel`. Imports only `campaign`; never ranks.

    model = TrajectoryWorldModel(spec)
    model.fit(pairs)                        # [(Intervention, Observation), ...]
    posterior = model.botorch_model().posterior(model.encode(candidates)[None])
    p = model.outcome.p_unsafe(samples)     # samples (b, S, T) mg/dL
"""

from ._botorch import TrajectoryEnsembleModel
from ._config import WorldModelConfig
from ._ensemble import GaussianEnsemble, TrainRecord, train_ensemble
from ._metrics import (
    CalibrationReport,
    Forecast,
    calibration_report,
    crps_ensemble,
    interval_coverage,
    one_step_predictions,
    open_loop_predictions,
)
from ._model import FitReport, TrajectoryWorldModel
from ._outcome import OutcomeModel
from ._genes import COLLECTIONS, GeneKnowledge, knowledge_cache_dir
from ._screen_features import DYNAMIC_NAMES, ScreenFeatures
from ._screen_model import ScreenEnsembleModel, ScreenFitReport, ScreenModelConfig, ScreenWorldModel, screen_features
from ._text import EMBEDDER, embed_texts, set_name_text, text_similarity
from .errors import ModelFileError, NoTrainingData, NotFittedError, ObservationFormatError, WorldModelError

__all__ = [
    "COLLECTIONS",
    "EMBEDDER",
    "GeneKnowledge",
    "ScreenEnsembleModel",
    "ScreenFeatures",
    "ScreenFitReport",
    "ScreenModelConfig",
    "ScreenWorldModel",
    "embed_texts",
    "set_name_text",
    "DYNAMIC_NAMES",
    "knowledge_cache_dir",
    "screen_features",
    "text_similarity",
    "CalibrationReport",
    "FitReport",
    "Forecast",
    "GaussianEnsemble",
    "ModelFileError",
    "NoTrainingData",
    "NotFittedError",
    "ObservationFormatError",
    "OutcomeModel",
    "TrainRecord",
    "TrajectoryEnsembleModel",
    "TrajectoryWorldModel",
    "WorldModelConfig",
    "WorldModelError",
    "calibration_report",
    "crps_ensemble",
    "interval_coverage",
    "one_step_predictions",
    "open_loop_predictions",
    "train_ensemble",
]

from ._readout_torch import SampleOutcome, limit_event, series_readout
from ._scalar import ScalarEnsembleModel, ScalarFitReport, ScalarModelConfig, ScalarWorldModel
from ._scalar_gp import GPDrawsModel

__all__ += [
    "GPDrawsModel",
    "SampleOutcome",
    "ScalarEnsembleModel",
    "ScalarFitReport",
    "ScalarModelConfig",
    "ScalarWorldModel",
    "limit_event",
    "series_readout",
]

from ._series import SeriesFitReport, SeriesModelConfig, SeriesWorldModel
from ._series_rollout import SeriesEnsembleModel

__all__ += ["SeriesEnsembleModel", "SeriesFitReport", "SeriesModelConfig", "SeriesWorldModel"]

from ._series_metrics import SeriesCalibration, SeriesScores, series_calibration

__all__ += ["SeriesCalibration", "SeriesScores", "series_calibration"]
