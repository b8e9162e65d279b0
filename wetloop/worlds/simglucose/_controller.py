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

from ._dosing import DosingSchedule

__all__ = ["RegimenController", "BBController", "reference_regimen"]


class RegimenController(Controller):
    """Delivers a `DosingSchedule` exactly: in the env step starting at minute t = k * step_min, the
    pump gets rate `insulin_u[k] / step_min` U/min, split into the basal rate and the rest as bolus.

    The step is found from the env's clock (`info["time"]`), not from a call count, so a reset env
    or a skipped call cannot shift the schedule.
    """

    def __init__(self, schedule: DosingSchedule, basal_u_per_h: float, start: datetime) -> None:
        super().__init__(init_state=None)
        self.schedule, self.start = schedule, start
        self.basal_u_per_min = basal_u_per_h / 60.0

    def policy(self, observation: Any, reward: float, done: bool, **info: Any) -> Action:
        rate = self._rate(info["time"])
        basal = min(self.basal_u_per_min, rate)
        return Action(basal=basal, bolus=rate - basal)

    def _rate(self, now: datetime) -> float:
        """U/min to deliver during the step that starts at `now` (0 outside the schedule)."""
        k = int(round((now - self.start).total_seconds() / 60.0 / self.schedule.step_min))
        if not 0 <= k < len(self.schedule.insulin_u):
            return 0.0
        return float(self.schedule.insulin_u[k]) / self.schedule.step_min

    def reset(self) -> None:
        """Stateless: the schedule is a function of the clock."""


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
