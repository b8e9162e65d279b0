"""The world model room: learns `state + intervention -> outcome` from a campaign's results.

Generic machinery any world uses: the vectorised deep ensemble of Gaussian heads (PETS members run
in one call, as TD-MPC2 does), the unit-cube codec of interventions, and calibration scores. A
world's own model family lives in its world folder (`wetloop/worlds/<name>/`); the generic families
(a scalar-readout ensemble or GP, and a time-course ensemble over declared series) live here.
Imports only `campaign`; never ranks.
"""

from ._codec import decode, encode
from ._config import WorldModelConfig, torch_threads
from ._ensemble import GaussianEnsemble, TrainRecord, train_ensemble
from ._metrics import crps_ensemble, interval_coverage
from .errors import ModelFileError, NoTrainingData, NotFittedError, ObservationFormatError, WorldModelError

__all__ = [
    "GaussianEnsemble",
    "ModelFileError",
    "NoTrainingData",
    "NotFittedError",
    "ObservationFormatError",
    "TrainRecord",
    "WorldModelConfig",
    "WorldModelError",
    "crps_ensemble",
    "decode",
    "encode",
    "interval_coverage",
    "torch_threads",
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
