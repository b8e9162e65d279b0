"""The simglucose world."""

from ._botorch import TrajectoryEnsembleModel
from ._calibration import CalibrationReport, Forecast, calibration_report, one_step_predictions, open_loop_predictions
from ._config import WorldModelConfig
from ._dosing import DosingSchedule, dosing_schedule, meals_of
from ._lab import SimglucoseLab, reference_day
from ._model import FitReport, TrajectoryWorldModel
from ._options import DayOptions, day_options, patient_names
from ._outcome import OutcomeModel
from ._readouts import glucose_range, glucose_readouts
from ._world import SimglucoseOptions, SimglucoseWorld

__all__ = [
    "CalibrationReport",
    "Forecast",
    "calibration_report",
    "one_step_predictions",
    "open_loop_predictions",
    "SimglucoseWorld",
    "SimglucoseOptions",
    "DayOptions",
    "DosingSchedule",
    "FitReport",
    "OutcomeModel",
    "SimglucoseLab",
    "TrajectoryEnsembleModel",
    "TrajectoryWorldModel",
    "WorldModelConfig",
    "day_options",
    "dosing_schedule",
    "glucose_range",
    "glucose_readouts",
    "meals_of",
    "patient_names",
    "reference_day",
]
