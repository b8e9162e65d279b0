"""The simglucose world: a virtual type-1-diabetes patient (UVA/Padova simulator). Only the world
class loads with the package; every other name loads its module on first use (`_lazy.py`)."""

from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports
from ._world import SimglucoseOptions, SimglucoseWorld

if TYPE_CHECKING:
    from ._botorch import TrajectoryEnsembleModel
    from ._calibration import CalibrationReport, Forecast, calibration_report, one_step_predictions, open_loop_predictions
    from ._config import WorldModelConfig
    from ._dosing import DosingSchedule, dosing_schedule, meals_of
    from ._lab import SimglucoseLab, reference_day
    from ._model import FitReport, TrajectoryWorldModel
    from ._options import DayOptions, day_options, patient_names
    from ._outcome import OutcomeModel
    from ._readouts import glucose_range, glucose_readouts

_MODULES = {
    "._botorch": ("TrajectoryEnsembleModel",),
    "._calibration": ("CalibrationReport", "Forecast", "calibration_report", "one_step_predictions", "open_loop_predictions"),
    "._config": ("WorldModelConfig",),
    "._dosing": ("DosingSchedule", "dosing_schedule", "meals_of"),
    "._lab": ("SimglucoseLab", "reference_day"),
    "._model": ("FitReport", "TrajectoryWorldModel"),
    "._options": ("DayOptions", "day_options", "patient_names"),
    "._outcome": ("OutcomeModel",),
    "._readouts": ("glucose_range", "glucose_readouts"),
}
_load = lazy_exports(__name__, _MODULES)


def __getattr__(name: str) -> Any:
    return _load(name)


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
