"""The simglucose day a spec asks for, checked against what simglucose ships, without importing it.

Importing simglucose imports gym 0.9.4 (slow, noisy); the parent process only needs the names in
its parameter CSVs, so they are read from the installed package's files directly.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wetloop.campaign import CampaignSpec, Intervention, SpecError
from wetloop.lab_adapters.errors import LabError, WorldOptionError

from ._days import DayPlan, DayVariation, draw_day, fixed_day
from ._dosing import meals_of, regimen_of

__all__ = ["DayOptions", "day_options", "option_problems", "simglucose_version", "world_fingerprint", "day_key", "patient_names"]

START = "2025-01-01T00:00:00"  # a fixed scenario start, so a day is a pure function of its inputs
STEP_MIN = 3  # the Dexcom sensor's sample time, and the env step the regimen is delivered on
ADAPTER_FORMAT = 1  # bump when the stored day changes shape or meaning: old cache entries are ignored


@dataclass(frozen=True)
class DayOptions:
    """The spec's days: patient, sensor, pump, length, and either one fixed day's meals as (whole
    minute, grams) or the distribution days are drawn from (`variation`)."""

    patient: str
    sensor: str
    pump: str
    hours: float
    meals: tuple[tuple[int, float], ...]
    start: str = START
    variation: DayVariation | None = None

    @property
    def n_steps(self) -> int:
        return int(round(self.hours * 60 / STEP_MIN))

    def day(self, seed: int | None) -> DayPlan:
        """The day an experiment runs on: the fixed day, or the distribution's day of `seed`."""
        if self.variation is None:
            return fixed_day(self.meals)
        if seed is None:
            raise ValueError("days vary in this spec: a day needs its seed")
        return draw_day(self.variation, seed)


def _params_dir() -> Path:
    found = importlib.util.find_spec("simglucose")
    if found is None or not found.submodule_search_locations:
        raise LabError("simglucose is not installed; install simglucose==0.2.11 to use the simglucose world")
    return Path(next(iter(found.submodule_search_locations))) / "params"


@functools.cache
def _rows(csv_name: str) -> tuple[dict[str, str], ...]:
    with open(_params_dir() / csv_name, newline="") as fh:
        return tuple(csv.DictReader(fh))


def _names(csv_name: str) -> tuple[str, ...]:
    rows = _rows(csv_name)
    if csv_name == "sensor_params.csv":  # the trajectory grid is the sensor's sample time: keep 3-min sensors
        rows = tuple(r for r in rows if float(r["sample_time"]) == STEP_MIN)
    return tuple(r["Name"] for r in rows)


def patient_names() -> tuple[str, ...]:
    """The 30 virtual patients of simglucose's `params/vpatient_params.csv`."""
    return _names("vpatient_params.csv")


@functools.cache
def simglucose_version() -> str:
    return importlib.metadata.version("simglucose")


def world_fingerprint() -> str:
    """Names the cache folder: simulator, its version and this adapter's stored format."""
    blob = json.dumps({"world": "simglucose", "version": simglucose_version(), "format": ADAPTER_FORMAT})
    return "simglucose-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def _choice(options: dict[str, Any], name: str, default: str | None, csv_name: str) -> str:
    value = options.get(name, default)
    choices = _names(csv_name)
    if value not in choices:
        hint = f"the names come from simglucose's params/{csv_name}"
        if name == "sensor":
            hint += f" (only sensors sampling every {STEP_MIN} min, the grid of the dosing schedule)"
        raise WorldOptionError(name, value, choices, hint=hint)
    return str(value)


def _hours(options: dict[str, Any]) -> float:
    value = options.get("hours", 24)
    ok = isinstance(value, (int, float)) and value > 0 and math.isclose((value * 60 / STEP_MIN) % 1, 0, abs_tol=1e-9)
    if not ok:
        raise WorldOptionError("hours", value, hint=f"give a positive length whose minutes divide by {STEP_MIN}, e.g. 24 or 3")
    return float(value)


def _variation(spec: CampaignSpec) -> DayVariation | None:
    raw = spec.world_options.get("days")
    if raw is None:
        return None
    if spec.world_options.get("meals"):
        raise WorldOptionError(
            "days", "with meals", hint="give either meals (one fixed day) or days (a distribution of days), not both"
        )
    try:
        variation = DayVariation.model_validate(raw)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'days'}: {e['msg']}" for e in exc.errors())
        raise WorldOptionError("days", raw, hint=detail) from None
    if float(spec.world_options.get("hours", 24)) > 24:
        raise WorldOptionError("hours", spec.world_options.get("hours"), hint="days drawn from a distribution last at most 24 h")
    return variation


def _regimen(spec: CampaignSpec) -> None:
    try:
        regimen_of(spec)
    except SpecError as exc:
        raise WorldOptionError("regimen", spec.world_options.get("regimen"), hint=str(exc)) from None


def _meals(spec: CampaignSpec) -> tuple[tuple[int, float], ...]:
    if spec.world_options.get("days") is not None:
        return ()
    try:
        meals = meals_of(spec)
    except SpecError as exc:
        raise WorldOptionError("meals", spec.world_options.get("meals"), hint=str(exc)) from None
    merged: dict[int, float] = {}
    for minute, grams in meals:  # the scenario sees whole minutes; same-minute meals would hide each other
        merged[math.floor(minute)] = merged.get(math.floor(minute), 0.0) + grams
    return tuple(sorted(merged.items()))


def day_options(spec: CampaignSpec) -> DayOptions:
    """Check the spec's world_options and resolve their defaults; `WorldOptionError` names the bad one."""
    options = spec.world_options
    return DayOptions(
        patient=_choice(options, "patient", None, "vpatient_params.csv"),
        sensor=_choice(options, "sensor", "Dexcom", "sensor_params.csv"),
        pump=_choice(options, "pump", "Insulet", "pump_params.csv"),
        hours=_hours(options),
        meals=_meals(spec),
        variation=_variation(spec),
    )


def option_problems(spec: CampaignSpec) -> list[str]:
    """Each world option simglucose itself would refuse (a patient, sensor or pump it does not ship, a
    day off the sensor's grid), one line each; nothing when simglucose is not installed here and the
    lab is remote (the remote lab checks them)."""
    options = spec.world_options
    checks = (
        lambda: _choice(options, "patient", None, "vpatient_params.csv"),
        lambda: _choice(options, "sensor", "Dexcom", "sensor_params.csv"),
        lambda: _choice(options, "pump", "Insulet", "pump_params.csv"),
        lambda: _hours(options),
        lambda: _meals(spec),
        lambda: _variation(spec),
        lambda: _regimen(spec),
    )
    problems = []
    for check in checks:
        try:
            check()
        except WorldOptionError as exc:
            problems.append(str(exc))
        except LabError as exc:  # simglucose is not installed
            return [f"world: {exc}"] if spec.lab.adapter == "local" else []
    return problems


def _options_blob(options: DayOptions) -> dict[str, Any]:
    blob = {k: v for k, v in asdict(options).items() if k != "variation"}
    if options.variation is not None:  # left out when None: fixed days keep the keys they always had
        blob["variation"] = options.variation.model_dump(mode="json")
    return blob


def day_key(
    options: DayOptions, intervention: Intervention | None, seed: int, controller: str, day_seed: int | None = None
) -> str:
    """The identity of a simulated day: everything that changes its outcome, hashed.

    Readout-only options (e.g. glucose_range) are left out, so specs that differ only in how the
    day is scored share its simulation.
    """
    blob: dict[str, Any] = {
        "options": _options_blob(options),
        "x": intervention.canonical() if intervention is not None else None,
        "seed": seed,
        "controller": controller,
    }
    if day_seed is not None:  # days that vary: the day drawn is part of the identity
        blob["day_seed"] = day_seed
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]
