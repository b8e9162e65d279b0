"""`SbmlOptions`: which model, what the interventions set in it, what is observed, when, and with what noise.

    world_options:
      model: basico:NF-kappaB.cps          # a file (.xml/.sbml/.cps) or a model shipped in a package
      observe: {NF_kBn: nfkb_nuclear}      # species or parameter id (or SBML name) -> series name
      times: {end: 480, step: 10}          # minutes; or a list [0, 5, 10, ...]
      noise: {relative: 0.05, absolute: 0.0}
      inputs:                              # what each intervention does, in model units and minutes
        - {target: IKK, how: pulses, level: ikk_level, width: pulse_min, period: period_min, baseline: 0}
        - {target: E1, how: constant, value: stimulus, start: 0, end: duration_min, baseline: 0}
        - {target: KPase, how: initial, value: {variable: inhibitor, scale: -0.1, offset: 0.12}}
        - {target: drug, how: bolus, dose: dose_uM, start: 0, period: 120, count: n_doses}

Every number of an input is a `Term`: a constant, the name of a numeric intervention variable, or
`{variable, scale, offset}` (value = offset + scale * variable), so one variable can drive several
fields and a dose can map onto a parameter linearly.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wetloop.campaign import Magnitude
from wetloop.worlds import WorldOptions

__all__ = [
    "TIME_UNITS_S",
    "BolusInput",
    "ConstantInput",
    "InitialInput",
    "Input",
    "Noise",
    "PulsesInput",
    "SbmlOptions",
    "Scaled",
    "Term",
    "TimeGrid",
]

TIME_UNITS_S = {"s": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0, "day": 86400.0}
"""Seconds per time unit, for `time_unit_override`."""


MAX_TIMES = 10_000
"""The most observation times a campaign may ask for."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Scaled(_Strict):
    """`offset + scale * <variable>`: a variable mapped linearly onto a model quantity."""

    variable: str
    scale: Magnitude = 1.0
    offset: Magnitude = 0.0


Term = Magnitude | str | Scaled
"""A number of an input: a constant, a variable's name, or a `Scaled` variable."""


def term_variables(term: Term | None) -> list[str]:
    """The intervention variables a term reads (none for a constant)."""
    if isinstance(term, str):
        return [term]
    return [term.variable] if isinstance(term, Scaled) else []


@overload
def term_value(term: Term | None, values: dict[str, Any], default: float) -> float: ...
@overload
def term_value(term: Term | None, values: dict[str, Any], default: None = None) -> float | None: ...
def term_value(term: Term | None, values: dict[str, Any], default: float | None = None) -> float | None:
    """The term's number for one intervention's values (`default` for a missing term)."""
    if term is None:
        return default
    if isinstance(term, str):
        return float(values[term])
    if isinstance(term, Scaled):
        return term.offset + term.scale * float(values[term.variable])
    return float(term)


class _Input(_Strict):
    target: str = Field(description="species or global parameter id (or its SBML name) the input sets")

    def terms(self) -> dict[str, Term | None]:
        """Every numeric field of the input, by name."""
        return {k: v for k, v in self.__dict__.items() if k not in ("target", "how")}


class InitialInput(_Input):
    """Set the target to `value` before time 0 (a pre-treatment level, a knock-down, a dose at t=0)."""

    how: Literal["initial"]
    value: Term


class BolusInput(_Input):
    """Add `dose` (the species' concentration unit, or the parameter's unit) at `start`, then every
    `period` minutes, `count` times in all (doses after the last observation time are dropped)."""

    how: Literal["bolus"]
    dose: Term
    start: Term = 0.0
    period: Term | None = None
    count: Term = 1.0


class ConstantInput(_Input):
    """Hold the target at `value` from `start` to `end` minutes (default: to the end), at `baseline`
    elsewhere (default: the model's initial value). A held species is clamped: reactions no longer
    change it, as an infusion that keeps a concentration constant would."""

    how: Literal["constant"]
    value: Term
    start: Term = 0.0
    end: Term | None = None
    baseline: Term | None = None


class PulsesInput(_Input):
    """A pulse train: the target at `level` for `width` minutes every `period` minutes from `start`
    (`count` pulses, default: as many as fit), at `baseline` between pulses (default: the model's
    initial value). Overlapping pulses merge; the target is clamped as for `constant`."""

    how: Literal["pulses"]
    level: Term
    width: Term
    period: Term
    start: Term = 0.0
    count: Term | None = None
    baseline: Term | None = None


Input = Annotated[InitialInput | BolusInput | ConstantInput | PulsesInput, Field(discriminator="how")]


class TimeGrid(_Strict):
    """Observation times `start, start + step, ..., end` in minutes."""

    start: Magnitude = Field(default=0.0, ge=0.0)
    end: Magnitude = Field(gt=0.0)
    step: Magnitude = Field(gt=0.0)

    @model_validator(mode="after")
    def _order(self) -> TimeGrid:
        if self.end <= self.start:
            raise ValueError(f"times: end ({self.end}) must be after start ({self.start})")
        if (self.end - self.start) / self.step > MAX_TIMES:
            raise ValueError(f"times: {{start, end, step}} gives more than {MAX_TIMES:,} observation times; raise step")
        return self

    def points(self) -> tuple[float, ...]:
        n = round((self.end - self.start) / self.step)
        pts = [self.start + i * self.step for i in range(n + 1) if self.start + i * self.step <= self.end + 1e-9]
        return tuple(pts if abs(pts[-1] - self.end) < 1e-9 else [*pts, self.end])


class Noise(_Strict):
    """Measurement noise on every observed value: y + N(0, (relative * y)^2 + absolute^2), floored at 0."""

    relative: Magnitude = Field(default=0.0, ge=0.0)
    absolute: Magnitude = Field(default=0.0, ge=0.0)


class SbmlOptions(WorldOptions):
    """The `world_options` of world `sbml` (see the module docstring for an example)."""

    model: str = Field(min_length=1, max_length=1000)
    observe: dict[str, str] = Field(min_length=1, max_length=64)
    times: TimeGrid | Annotated[tuple[Magnitude, ...], Field(max_length=MAX_TIMES)]
    inputs: tuple[Input, ...] = Field(default=(), max_length=64)
    noise: Noise = Noise()
    time_unit_override: Literal["s", "second", "min", "minute", "h", "hour", "day"] | None = None

    @field_validator("observe")
    @classmethod
    def _series_names(cls, observe: dict[str, str]) -> dict[str, str]:
        import re

        bad = [name for name in observe.values() if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name)]
        if bad:
            raise ValueError(f"series names {bad} must start with a letter or _ and hold only letters, digits, _ and .")
        if len(set(observe.values())) != len(observe):
            raise ValueError(f"two observed ids share a series name: {sorted(observe.values())}")
        return observe

    @field_validator("times")
    @classmethod
    def _times(cls, times: TimeGrid | tuple[float, ...]) -> TimeGrid | tuple[float, ...]:
        pts = times.points() if isinstance(times, TimeGrid) else times
        if len(pts) < 2 or any(b <= a for a, b in itertools.pairwise(pts)) or pts[0] < 0:
            raise ValueError("times must be at least two increasing minutes >= 0 (a list, or {start, end, step})")
        return times

    @model_validator(mode="after")
    def _one_hold_per_target(self) -> SbmlOptions:
        held = [i.target for i in self.inputs if i.how in ("constant", "pulses")]
        twice = sorted({t for t in held if held.count(t) > 1})
        if twice:
            raise ValueError(f"inputs hold {twice} more than once; one constant or pulses input per target")
        return self

    @property
    def times_min(self) -> tuple[float, ...]:
        """The observation times in minutes."""
        return self.times.points() if isinstance(self.times, TimeGrid) else tuple(float(t) for t in self.times)

    def variables(self) -> set[str]:
        """Every intervention variable some input reads."""
        return {v for i in self.inputs for term in i.terms().values() for v in term_variables(term)}
