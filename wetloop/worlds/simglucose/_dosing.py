"""Insulin regimens: how a (basal, carb ratio) intervention and the meal schedule become inputs.

Shared by the lab (which drives the simulated pump with it) and the world model (which needs the
insulin and carbohydrate a candidate regimen would deliver, to roll the patient forward), so the
two can never disagree about what a regimen means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wetloop.campaign import CampaignSpec, Intervention
from wetloop.campaign.errors import SpecError

__all__ = ["DosingSchedule", "dosing_schedule", "meals_of"]


@dataclass(frozen=True)
class DosingSchedule:
    """Inputs per step: `insulin_u[k]` units and `carbs_g[k]` grams delivered in [times_min[k], +step_min).

    Shapes: all three arrays are (n_steps,), n_steps = hours * 60 / step_min.
    """

    times_min: np.ndarray
    insulin_u: np.ndarray
    carbs_g: np.ndarray
    step_min: float


def meals_of(spec: CampaignSpec) -> list[tuple[float, float]]:
    """The spec's meal schedule as (minute of the day, grams) pairs."""
    meals = spec.world_options.get("meals")
    if not meals:
        raise SpecError("world_options.meals is missing: give a list of [hour, grams] pairs")
    try:
        return [(float(h) * 60.0, float(g)) for h, g in meals]
    except (TypeError, ValueError):
        raise SpecError(f"world_options.meals must be [hour, grams] pairs, got {meals!r}") from None


def dosing_schedule(spec: CampaignSpec, intervention: Intervention, step_min: float = 3.0) -> DosingSchedule:
    """Basal insulin every step, a meal bolus of grams / carb_ratio in the step of each meal."""
    for name in ("basal", "carb_ratio"):
        if name not in intervention.values:
            raise SpecError(f"an insulin regimen needs the variable {name!r}; got {sorted(intervention.values)}")
    hours = float(spec.world_options.get("hours", 24))
    n = int(round(hours * 60.0 / step_min))
    times = np.arange(n) * step_min
    insulin = np.full(n, intervention.number("basal") * step_min / 60.0)
    carbs = np.zeros(n)
    for minute, grams in meals_of(spec):
        k = int(minute // step_min)
        if 0 <= k < n:
            carbs[k] += grams
            insulin[k] += grams / intervention.number("carb_ratio")
    return DosingSchedule(times_min=times, insulin_u=insulin, carbs_g=carbs, step_min=step_min)
