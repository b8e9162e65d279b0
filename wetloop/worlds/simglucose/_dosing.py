"""Insulin regimens: how an intervention and a day's meals become the insulin a pump delivers.

A regimen is a basal rate by time of day (one or more segments), a carb ratio by time of day for
the meal boluses (grams announced / carb ratio), and optionally a correction factor: at each
announced meal, glucose above `correction_above` adds (glucose - correction_target) / factor units,
as simglucose's own basal-bolus controller does. Which spec variable plays which part is said by
`world_options.regimen`; by default the variables `basal`, `carb_ratio` and (when declared)
`correction_factor` are used all day.

Shared by the lab (which drives the simulated pump with it) and the world model (which needs the
insulin and carbohydrate a candidate regimen would deliver on a day, to roll the patient forward),
so the two can never disagree about what a regimen means. The correction depends on glucose, so the
schedule says where it may happen and with which factor; whoever knows the glucose applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wetloop.campaign import CampaignSpec, Intervention
from wetloop.campaign.errors import SpecError

from ._days import DayPlan, fixed_day

__all__ = ["DosingSchedule", "Regimen", "dosing_schedule", "meals_of", "regimen_of", "correction_units"]

DAY_MIN = 24 * 60


@dataclass(frozen=True)
class Regimen:
    """Which variable sets the basal rate and the carb ratio from which minute of the day, and which
    (if any) is the correction factor."""

    basal: tuple[tuple[float, str], ...]
    carb_ratio: tuple[tuple[float, str], ...]
    correction_factor: str | None = None
    correction_target: float = 140.0
    correction_above: float = 150.0

    @property
    def variables(self) -> tuple[str, ...]:
        names = [v for _, v in self.basal] + [v for _, v in self.carb_ratio]
        return tuple(dict.fromkeys(names + ([self.correction_factor] if self.correction_factor else [])))

    def basal_at(self, intervention: Intervention, minute: float) -> float:
        return _segment(self.basal, intervention, minute)

    def carb_ratio_at(self, intervention: Intervention, minute: float) -> float:
        return _segment(self.carb_ratio, intervention, minute)


def _segment(segments: tuple[tuple[float, str], ...], intervention: Intervention, minute: float) -> float:
    of_day = minute % DAY_MIN
    name = segments[-1][1]  # before the first start the previous day's last segment runs on
    for start, variable in segments:
        if start <= of_day:
            name = variable
    return intervention.number(name)


def _segments(raw: Any, default: str, what: str) -> tuple[tuple[float, str], ...]:
    if raw is None:
        return ((0.0, default),)
    if isinstance(raw, str):
        return ((0.0, raw),)
    try:
        pairs = [(float(h) * 60.0, str(v)) for h, v in raw]
    except (TypeError, ValueError):
        raise SpecError(f"world_options.regimen.{what} must be a variable name or [hour, variable] pairs, got {raw!r}") from None
    hours = [p[0] for p in pairs]
    if (
        not pairs
        or hours != sorted(hours)
        or len(set(hours)) != len(hours)
        or not 0 <= hours[0] < DAY_MIN
        or hours[-1] >= DAY_MIN
    ):
        raise SpecError(
            f"world_options.regimen.{what}: give [hour, variable] pairs with increasing hours in [0, 24), got {raw!r}"
        )
    return tuple(pairs)


def regimen_of(spec: CampaignSpec) -> Regimen:
    """The spec's regimen (`world_options.regimen`, see the module docstring); SpecError when it names
    a variable the spec does not declare."""
    raw = spec.world_options.get("regimen") or {}
    if not isinstance(raw, dict):
        raise SpecError(f"world_options.regimen must be a mapping, got {raw!r}")
    default_cf = "correction_factor" if "correction_factor" in spec.variable_names else None
    regimen = Regimen(
        basal=_segments(raw.get("basal"), "basal", "basal"),
        carb_ratio=_segments(raw.get("carb_ratio"), "carb_ratio", "carb_ratio"),
        correction_factor=raw.get("correction_factor", default_cf),
        correction_target=float(raw.get("correction_target", 140.0)),
        correction_above=float(raw.get("correction_above", 150.0)),
    )
    missing = [v for v in regimen.variables if v not in spec.variable_names]
    if missing:
        raise SpecError(
            f"an insulin regimen needs the variable(s) {missing}, which the spec does not declare "
            f"(declared: {sorted(spec.variable_names)}); declare them under interventions or name others in "
            "world_options.regimen"
        )
    return regimen


@dataclass(frozen=True)
class DosingSchedule:
    """Inputs per step: `insulin_u[k]` units (basal plus meal boluses) and `carbs_g[k]` grams eaten in
    [times_min[k], +step_min); `basal_u[k]` is the basal part. At the steps in `correction_steps` (those
    with an announced meal) a correction bolus may be added: see `correction_units`.

    Shapes: the arrays are (n_steps,), n_steps = hours * 60 / step_min.
    """

    times_min: np.ndarray
    insulin_u: np.ndarray
    carbs_g: np.ndarray
    basal_u: np.ndarray
    step_min: float
    correction_steps: tuple[int, ...] = ()
    correction_factor: float | None = None
    correction_target: float = 140.0
    correction_above: float = 150.0


def correction_units(schedule: DosingSchedule, glucose: float) -> float:
    """The correction bolus at a correction step, for the glucose seen then (0 without a factor)."""
    if schedule.correction_factor is None or glucose <= schedule.correction_above:
        return 0.0
    return (glucose - schedule.correction_target) / schedule.correction_factor


def meals_of(spec: CampaignSpec) -> list[tuple[float, float]]:
    """The spec's fixed meal schedule as (minute of the day, grams) pairs."""
    meals = spec.world_options.get("meals")
    if not meals:
        raise SpecError(
            "world_options.meals is missing: give a list of [hour, grams] pairs (one fixed day), "
            "or world_options.days (a distribution of days)"
        )
    try:
        return [(float(h) * 60.0, float(g)) for h, g in meals]
    except (TypeError, ValueError):
        raise SpecError(f"world_options.meals must be [hour, grams] pairs, got {meals!r}") from None


def spec_day(spec: CampaignSpec) -> DayPlan:
    """The spec's fixed day (its meals, merged per whole minute)."""
    merged: dict[int, float] = {}
    for minute, grams in meals_of(spec):
        merged[int(minute // 1)] = merged.get(int(minute // 1), 0.0) + grams
    return fixed_day(tuple(sorted(merged.items())))


def dosing_schedule(
    spec: CampaignSpec, intervention: Intervention, step_min: float = 3.0, day: DayPlan | None = None
) -> DosingSchedule:
    """Basal insulin every step by time of day; in the step of each announced meal a bolus of
    announced grams / carb ratio; the grams eaten in the step they are eaten. `day` defaults to the
    spec's fixed day."""
    regimen = regimen_of(spec)
    day = day if day is not None else spec_day(spec)
    hours = float(spec.world_options.get("hours", 24))
    n = int(round(hours * 60.0 / step_min))
    times = np.arange(n) * step_min
    basal = np.array([regimen.basal_at(intervention, t) * step_min / 60.0 for t in times])
    insulin, carbs, steps = basal.copy(), np.zeros(n), []
    for minute, eaten, announced in day.meals:
        k = int(minute // step_min)
        if 0 <= k < n:
            carbs[k] += eaten
            if announced > 0:
                insulin[k] += announced / regimen.carb_ratio_at(intervention, minute)
                steps.append(k)
    cf = intervention.number(regimen.correction_factor) if regimen.correction_factor else None
    return DosingSchedule(
        times_min=times,
        insulin_u=insulin,
        carbs_g=carbs,
        basal_u=basal,
        step_min=step_min,
        correction_steps=tuple(sorted(set(steps))),
        correction_factor=cf,
        correction_target=regimen.correction_target,
        correction_above=regimen.correction_above,
    )
