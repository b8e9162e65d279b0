"""The simglucose world."""

from ._dosing import DosingSchedule, dosing_schedule, meals_of
from ._options import DayOptions, day_options, patient_names
from ._lab import SimglucoseLab, reference_day
from ._botorch import TrajectoryEnsembleModel
from ._model import FitReport, TrajectoryWorldModel
from ._outcome import OutcomeModel

from ._calibration import CalibrationReport, Forecast, calibration_report, one_step_predictions, open_loop_predictions
from ._world import SimglucoseWorld, SimglucoseOptions

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
    "day_options",
    "dosing_schedule",
    "meals_of",
    "patient_names",
    "reference_day",
]
