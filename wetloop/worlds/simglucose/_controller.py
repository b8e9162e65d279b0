"""simglucose controllers: the campaign's regimen, and simglucose's own basal-bolus reference.

Importing this module imports simglucose (and gym 0.9.4 with it), so only the processes that
simulate import it: pool workers, and the caller of `reference_day`.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

import numpy as np

with warnings.catch_warnings():  # gym 0.9.4 and simglucose import pkg_resources, which warns
    warnings.simplefilter("ignore")
    from simglucose.controller.basal_bolus_ctrller import BBController
    from simglucose.controller.base import Action, Controller

from ._days import DayPlan
from ._dosing import DosingSchedule, correction_units

__all__ = ["RegimenController", "ReferenceController", "reference_regimen"]


def _step_of(now: datetime, start: datetime, step_min: float) -> int:
    return int(round((now - start).total_seconds() / 60.0 / step_min))


class RegimenController(Controller):
    """Delivers a `DosingSchedule`: in the env step starting at minute t = k * step_min, the pump gets
    rate `insulin_u[k] / step_min` U/min, split into the basal part and the rest as bolus; at a
    correction step the correction for the CGM reading then is added to the bolus.

    The step is found from the env's clock (`info["time"]`), not from a call count, so a reset env
    or a skipped call cannot shift the schedule.
    """

    def __init__(self, schedule: DosingSchedule, start: datetime) -> None:
        super().__init__(init_state=None)
        self.schedule, self.start = schedule, start
        self._corrections = set(schedule.correction_steps)

    def policy(self, observation: Any, reward: float, done: bool, **info: Any) -> Action:
        k = _step_of(info["time"], self.start, self.schedule.step_min)
        if not 0 <= k < len(self.schedule.insulin_u):
            return Action(basal=0.0, bolus=0.0)
        step = self.schedule.step_min
        units = float(self.schedule.insulin_u[k])
        if k in self._corrections:
            units += correction_units(self.schedule, float(observation.CGM))
        basal = min(float(self.schedule.basal_u[k]), units) / step
        return Action(basal=basal, bolus=units / step - basal)

    def reset(self) -> None:
        """Stateless: the schedule is a function of the clock."""


class ReferenceController(BBController):
    """simglucose's `BBController` (the patient's TRUE basal rate, carb ratio and correction factor),
    told the grams ANNOUNCED on the day, in the step they are announced, like the campaign's regimen:
    both dose for the same meals with the same counting error at the same time."""

    def __init__(self, day: DayPlan, start: datetime, step_min: float) -> None:
        super().__init__()
        self.start, self.step_min = start, step_min
        self.announced: dict[int, float] = {}
        for minute, _, grams in day.meals:
            k = int(minute // step_min)
            self.announced[k] = self.announced.get(k, 0.0) + grams

    def policy(self, observation: Any, reward: float, done: bool, **info: Any) -> Action:
        k = _step_of(info["time"], self.start, self.step_min)
        grams = self.announced.get(k, 0.0)
        return super().policy(observation, reward, done, **{**info, "meal": grams / info.get("sample_time", self.step_min)})


def reference_regimen(controller: BBController, patient: str) -> dict[str, float]:
    """The patient's TRUE basal rate (U/h), carb ratio (g/U) and correction factor (mg/dL per U),
    as simglucose's BBController reads them from `Quest.csv` and `vpatient_params.csv`.
    """
    quest = controller.quest[controller.quest.Name == patient]
    params = controller.patient_params[controller.patient_params.Name == patient]
    return {
        "basal_u_per_h": float(np.squeeze(params.u2ss.values * params.BW.values / 6000.0 * 60.0)),
        "carb_ratio": float(np.squeeze(quest.CR.values)),
        "correction_factor": float(np.squeeze(quest.CF.values)),
        "target": float(controller.target),
    }
