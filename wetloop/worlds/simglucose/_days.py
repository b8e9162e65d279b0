"""Days that vary: the distribution a spec's patient-days are drawn from, and one drawn day.

A spec either fixes one day (`world_options.meals`, every experiment replays it) or describes a
distribution (`world_options.days`): meal slots, each eaten with a probability at a time and size
drawn around its mean, carbohydrate counting error (the grams announced to the regimen differ from
the grams eaten), and simglucose's own random starting state. Each experiment is one day drawn with
a recorded seed; the world model draws its own days from the same distribution to score a regimen
over many days.

The default slots are simglucose's `RandomScenario` (breakfast, lunch, dinner and three snacks), and
`draw_day` makes the same random calls in the same order, so with no counting error a drawn day's
meals equal `RandomScenario(seed=...)`'s (a test holds them together). The counting error is drawn
from a second stream, so it never changes which meals are eaten.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MealSlot",
    "DayVariation",
    "DayPlan",
    "RANDOM_SCENARIO",
    "draw_day",
    "fixed_day",
    "campaign_day_seed",
    "held_out_seeds",
    "model_seeds",
]

Hour = Annotated[float, Field(ge=0, le=24)]


class MealSlot(BaseModel):
    """One meal a day may have: eaten with `probability`, at an hour drawn from a normal truncated to
    [earliest, latest], of grams drawn from a normal (rounded, never negative)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="meal", max_length=40)
    probability: float = Field(ge=0, le=1)
    hour: Hour
    hour_sd: float = Field(ge=0, le=12, description="spread of the meal time, hours")
    earliest: Hour
    latest: Hour
    grams: float = Field(ge=0, le=1000)
    grams_sd: float = Field(ge=0, le=1000)
    announced: bool = Field(True, description="whether the meal is announced to the regimen (bolused)")

    @model_validator(mode="after")
    def _window(self) -> MealSlot:
        if not self.earliest <= self.hour <= self.latest:
            raise ValueError(
                f"meal {self.name!r}: hour {self.hour:g} is outside [earliest, latest] = [{self.earliest:g}, {self.latest:g}]"
            )
        return self


# simglucose 0.2.11 `RandomScenario.create_scenario`: [breakfast, snack, lunch, snack, dinner, snack]
RANDOM_SCENARIO: tuple[MealSlot, ...] = tuple(
    MealSlot(name=n, probability=p, hour=h, hour_sd=sd, earliest=lo, latest=hi, grams=g, grams_sd=gsd)
    for n, p, lo, hi, h, sd, g, gsd in (
        ("breakfast", 0.95, 5, 9, 7, 1.0, 45, 10),
        ("morning snack", 0.3, 9, 10, 9.5, 0.5, 10, 5),
        ("lunch", 0.95, 10, 14, 12, 1.0, 70, 10),
        ("afternoon snack", 0.3, 14, 16, 15, 0.5, 10, 5),
        ("dinner", 0.95, 16, 20, 18, 1.0, 80, 10),
        ("evening snack", 0.3, 20, 23, 21.5, 0.5, 10, 5),
    )
)


class DayVariation(BaseModel):
    """`world_options.days`: the distribution of patient-days (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meals: Literal["simglucose"] | list[MealSlot] = Field(
        "simglucose", description="meal slots, or 'simglucose' for RandomScenario's six"
    )
    carb_count_cv: float = Field(
        0.0, ge=0, le=1, description="carbohydrate counting error: announced grams = eaten x lognormal(0, cv)"
    )
    random_start: bool = Field(True, description="simglucose's random initial glucose state (random_init_bg)")

    @property
    def slots(self) -> tuple[MealSlot, ...]:
        return RANDOM_SCENARIO if self.meals == "simglucose" else tuple(self.meals)


@dataclass(frozen=True)
class DayPlan:
    """One day's meals: (minute of the day, grams eaten, grams announced to the regimen); its seed
    (None for the spec's fixed day) and whether the patient starts from a random state."""

    meals: tuple[tuple[int, float, float], ...]
    seed: int | None = None
    random_start: bool = False

    def eaten(self) -> list[tuple[int, float]]:
        return [(m, g) for m, g, _ in self.meals if g > 0]

    def as_record(self) -> dict[str, object]:
        """What the lab stores beside the day (JSON data)."""
        return {
            "day_seed": self.seed,
            "random_start": self.random_start,
            "meals": [{"minute": m, "eaten_g": g, "announced_g": a} for m, g, a in self.meals],
        }


def fixed_day(meals: tuple[tuple[int, float], ...]) -> DayPlan:
    """The spec's one day: every meal eaten and announced as given."""
    return DayPlan(meals=tuple((m, float(g), float(g)) for m, g in meals))


def draw_day(variation: DayVariation, seed: int) -> DayPlan:
    """One day of the distribution, a pure function of (variation, seed)."""
    from scipy.stats import truncnorm  # here: scipy.stats is slow to import, and the world loads with the package

    rng = np.random.RandomState(seed)  # RandomScenario's generator and call order
    drawn: list[tuple[int, float, bool]] = []
    for slot in variation.slots:
        if rng.rand() < slot.probability:
            mean, sd = slot.hour * 60, slot.hour_sd * 60
            if sd > 0:
                a, b = (slot.earliest * 60 - mean) / sd, (slot.latest * 60 - mean) / sd
                minute = float(np.round(truncnorm.rvs(a=a, b=b, loc=mean, scale=sd, random_state=rng)))
            else:
                minute = float(round(mean))
            grams = max(round(rng.normal(slot.grams, slot.grams_sd)), 0)
            drawn.append((int(minute), float(grams), slot.announced))
    errors = np.random.default_rng([seed, 1]).normal(0.0, 1.0, len(drawn))
    cv = variation.carb_count_cv
    sigma = math.sqrt(math.log1p(cv**2))  # a lognormal factor with mean 1 and coefficient of variation cv
    merged: dict[int, tuple[float, float]] = {}  # same-minute meals would hide each other in the scenario
    for (at, eaten, announced), z in zip(drawn, errors):
        said = round(eaten * math.exp(sigma * z - sigma**2 / 2), 1) if announced else 0.0
        g0, s0 = merged.get(at, (0.0, 0.0))
        merged[at] = (g0 + eaten, s0 + said)
    return DayPlan(meals=tuple((m, g, s) for m, (g, s) in sorted(merged.items())), seed=seed, random_start=variation.random_start)


_CAMPAIGN_SPACE = 2**30  # campaign days draw seeds below this; held-out and model days above


def campaign_day_seed(spec_seed: int, experiment_key: str) -> int:
    """The day an experiment is run on: a hash of the campaign's seed and the experiment key, so a
    repeat of a regimen (another key) gets another day, and a resumed campaign the same one."""
    digest = hashlib.sha256(f"{spec_seed}:{experiment_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _CAMPAIGN_SPACE


def held_out_seeds(n: int, offset: int = 0) -> list[int]:
    """Seeds of held-out days: never drawn by a campaign (they lie above `campaign_day_seed`'s range)."""
    return [_CAMPAIGN_SPACE + offset + i for i in range(n)]


def model_seeds(n: int, seed: int) -> list[int]:
    """Seeds of the days the world model imagines, apart from campaign and held-out days."""
    return [2 * _CAMPAIGN_SPACE + seed * 100_003 + i for i in range(n)]
