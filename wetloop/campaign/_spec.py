"""The campaign spec: the question, the objective, the intervention space, safety, cost, budget.

A spec is what a person writes (YAML) to start a campaign. Everything else in the loop reads it;
nothing changes it once the campaign has started (it is frozen and stored with the campaign).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

__all__ = [
    "LIMITS",
    "Count",
    "Frozen",
    "Magnitude",
    "Number",
    "SetValue",
    "Value",
    "Variable",
    "Series",
    "Readout",
    "ReadoutStat",
    "Objective",
    "SafetyLimit",
    "Cost",
    "LabRef",
    "Budget",
    "AtCeiling",
    "CampaignSpec",
    "default_spec_path",
]

LIMITS: dict[str, int] = {
    "file_bytes": 1_000_000,
    "name": 64,
    "question": 4_000,
    "text": 2_000,
    "unit": 40,
    "magnitude": 10**15,
    "variables": 32,
    "choices": 10_000,
    "items": 1_000,
    "levels": 16,
    "series": 64,
    "readouts": 128,
    "safety": 32,
    "rounds": 1_000,
    "batch": 1_536,
    "experiments": 100_000,
    "seed": 2**32,
}
"""The documented maxima of a spec: file size in bytes; characters of the campaign's name (and of
each variable, series and readout name), its question, a description and a unit; the size of any
number (hard limits, thresholds, costs, bounds); how many variables, categorical choices, set items
and levels, series, readouts and safety limits; rounds, batch and rounds x batch; seeds lie in
[0, 2**32)."""


def _bounded(value: float) -> float:
    if abs(value) > LIMITS["magnitude"]:
        raise ValueError(f"{value:g} is too large; give a number between -{LIMITS['magnitude']:g} and {LIMITS['magnitude']:g}")
    return value


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A finite number; `true`/`false` and text are not numbers (YAML's `yes` is not 1.0)."""

Magnitude = Annotated[Number, AfterValidator(_bounded)]
"""A finite number no larger in size than `LIMITS["magnitude"]` (a hard limit, a threshold, a cost)."""

Count = Annotated[int, Field(strict=True)]
"""A whole number written as one (`true` is not 1)."""

Text = Annotated[str, Field(max_length=LIMITS["text"])]
Unit = Annotated[str, Field(max_length=LIMITS["unit"])]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Frozen(BaseModel):
    """Base of every record in the shared language: immutable, strict about unknown fields, and no
    number in it is NaN or infinite (the store's JSON could not hold it; SQLite could not read it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


SetValue = dict[str, str]
"""The value of a `set` variable: each chosen item with its level, e.g. `{"Gata1": "oe", "Pu1": "ko"}`."""


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number; write the number itself")
    return value


Value = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)] | str | SetValue
"""The value of one variable in an intervention: a number, a name, or a set of items with levels."""


class Variable(Frozen):
    """One named variable of the intervention space. Four kinds:

    - `continuous`: a number in [`lower`, `upper`] (hard limits: the lab rejects anything outside),
      searched on a `linear` or `log` scale; `start` is the conservative region the first round is
      drawn from, before the world model has seen any data (a safe seed set, as in safe Bayesian
      optimisation).
    - `integer`: a whole number in [`lower`, `upper`], with an optional `start` region.
    - `categorical`: one name; `choices` lists the allowed ones, or is None when the world decides (a
      screen knows its genes) and rejects unknown names itself.
    - `set`: up to `max_items` (at least `min_items`) of `items`, each at one of `levels`; the value
      maps each chosen item to its level, e.g. knock out or overexpress up to 3 of 11 genes:
      `{items: [Gata1, ...], levels: [ko, oe], max_items: 3}` -> `{"Gata1": "oe", "Pu1": "ko"}`.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=LIMITS["name"])
    unit: Unit = ""
    kind: Literal["continuous", "integer", "categorical", "set"] = "continuous"
    lower: Magnitude | None = None
    upper: Magnitude | None = None
    start: tuple[Magnitude, Magnitude] | None = None
    scale: Literal["linear", "log"] = "linear"
    choices: tuple[Name, ...] | None = Field(default=None, max_length=LIMITS["choices"])
    items: tuple[Name, ...] | None = Field(default=None, max_length=LIMITS["items"])
    levels: tuple[Name, ...] = Field(default=("on",), max_length=LIMITS["levels"])
    min_items: Count = Field(default=0, ge=0)
    max_items: Count | None = Field(default=None, ge=1)
    description: Text = ""

    @model_validator(mode="after")
    def _check_kind(self) -> Variable:
        numeric = self.kind in ("continuous", "integer")
        if not numeric and (self.lower is not None or self.upper is not None or self.start is not None):
            raise ValueError(f"variable {self.name!r}: a {self.kind} variable has no lower/upper/start")
        if self.kind != "categorical" and self.choices is not None:
            raise ValueError(f"variable {self.name!r}: choices are for categorical variables")
        if self.kind != "set" and (self.items is not None or self.max_items is not None or self.min_items):
            raise ValueError(f"variable {self.name!r}: items/max_items/min_items are for set variables")
        if numeric:
            self._check_numeric()
        elif self.kind == "categorical" and self.choices is not None:
            _check_names(self.name, "choices", self.choices)
        elif self.kind == "set":
            self._check_set()
        return self

    def _check_numeric(self) -> None:
        if self.lower is None or self.upper is None:
            raise ValueError(f"variable {self.name!r}: a {self.kind} variable needs lower and upper")
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError(f"variable {self.name!r}: lower and upper must be finite numbers")
        if not self.lower < self.upper:
            raise ValueError(f"variable {self.name!r}: lower ({self.lower}) must be below upper ({self.upper})")
        if self.kind == "integer" and not (float(self.lower).is_integer() and float(self.upper).is_integer()):
            raise ValueError(f"variable {self.name!r}: an integer variable needs whole-number lower and upper")
        if self.scale == "log" and self.lower <= 0:
            raise ValueError(f"variable {self.name!r}: a log-scale variable needs lower > 0, got {self.lower}")
        if self.start is not None:
            lo, hi = self.start
            if not (self.lower <= lo <= hi <= self.upper):
                raise ValueError(
                    f"variable {self.name!r}: start {list(self.start)} must lie inside "
                    f"[{self.lower}, {self.upper}] with start[0] <= start[1]"
                )

    def _check_set(self) -> None:
        if not self.items:
            raise ValueError(f"variable {self.name!r}: a set variable needs items (the names it chooses from)")
        _check_names(self.name, "items", self.items)
        _check_names(self.name, "levels", self.levels)
        most = self.max_items if self.max_items is not None else len(self.items)
        if not self.min_items <= most <= len(self.items):
            raise ValueError(
                f"variable {self.name!r}: need min_items ({self.min_items}) <= max_items ({most}) <= "
                f"the number of items ({len(self.items)})"
            )

    # -- numbers --------------------------------------------------------------------------------
    @property
    def is_numeric(self) -> bool:
        return self.kind in ("continuous", "integer")

    def _bounds(self) -> tuple[float, float]:
        if self.lower is None or self.upper is None:
            raise TypeError(f"variable {self.name!r} is {self.kind}: it has no numeric scale")
        return self.lower, self.upper

    @property
    def start_bounds(self) -> tuple[float, float]:
        return self.start if self.start is not None else self._bounds()

    @property
    def most_items(self) -> int:
        """The largest number of items a set variable may choose (0 for other kinds)."""
        if self.kind != "set" or self.items is None:
            return 0
        return self.max_items if self.max_items is not None else len(self.items)

    def to_unit(self, value: float) -> float:
        """Map a value in [lower, upper] to [0, 1] on the variable's scale (log or linear)."""
        lo, hi = self._bounds()
        if self.scale == "log":
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)

    def from_unit(self, u: float) -> float:
        """Inverse of `to_unit` (an integer variable rounds to the nearest whole number)."""
        lo, hi = self._bounds()
        if self.scale == "log":
            value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        else:
            value = lo + u * (hi - lo)
        value = min(max(value, lo), hi)  # rounding can cross a bound by an ulp
        return float(round(value)) if self.kind == "integer" else value

    # -- encoding -----------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Columns this variable takes in the unit-cube encoding (`encode`)."""
        if self.is_numeric:
            return 1
        if self.kind == "categorical":
            if self.choices is None:
                raise TypeError(f"variable {self.name!r}: a categorical variable without choices has no generic encoding")
            return len(self.choices)
        return len(self.items or ()) * len(self.levels)

    def encode(self, value: Value) -> list[float]:
        """One value -> `width` numbers in [0, 1]: the unit scale for numbers, one-hot for a choice,
        and per item and level an indicator for a set (all zeros for an item not chosen)."""
        if self.is_numeric:
            return [self.to_unit(float(value))]  # type: ignore[arg-type]
        if self.kind == "categorical":
            return [float(value == c) for c in self.choices or ()]
        chosen = value if isinstance(value, dict) else {}
        return [float(chosen.get(item) == level) for item in self.items or () for level in self.levels]

    def decode(self, row: Sequence[float]) -> Value:
        """`width` numbers -> the nearest valid value (the inverse of `encode` on encoded values)."""
        if self.is_numeric:
            return self.from_unit(min(max(float(row[0]), 0.0), 1.0))
        if self.kind == "categorical":
            choices = self.choices or ()
            return choices[max(range(len(choices)), key=lambda i: row[i])]
        k = len(self.levels)
        scores = []
        for i, item in enumerate(self.items or ()):
            best = max(range(k), key=lambda j: row[i * k + j])
            scores.append((row[i * k + best], item, self.levels[best]))
        scores.sort(key=lambda s: -s[0])
        picked = [s for s in scores[: self.most_items] if s[0] > 0.5]
        if len(picked) < self.min_items:
            picked = scores[: self.min_items]
        return {item: level for _, item, level in sorted(picked, key=lambda s: s[1])}

    # -- validity -------------------------------------------------------------------------------
    def violation(self, value: object) -> str | None:
        """Why `value` breaks this variable's hard limits, in words (None when it is valid)."""
        if value is None:
            return None
        if self.kind == "categorical":
            if not isinstance(value, str):
                return f"{self.name} must be a name, got {value!r}"
            if self.choices is not None and value not in self.choices:
                return f"{self.name} = {value!r} is not one of the allowed choices {list(self.choices)}"
            return None
        if self.kind == "set":
            return self._set_violation(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.name} must be a number{' in ' + self.unit if self.unit else ''}, got {value!r}"
        if not math.isfinite(value):
            return f"{self.name} must be a finite number, got {value!r}"
        lo, hi = self._bounds()
        if not lo <= value <= hi:
            return f"{self.name} = {value:g} {self.unit} is outside the hard limits [{lo:g}, {hi:g}]".replace("  ", " ")
        if self.kind == "integer" and not float(value).is_integer():
            return f"{self.name} = {value:g} must be a whole number"
        return None

    def start_violation(self, value: object) -> str | None:
        """Why `value` lies outside this numeric variable's start region, the conservative region the
        first round is confined to before any world model exists (None: inside, or not a number)."""
        if not self.is_numeric or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        lo, hi = self.start_bounds
        if lo <= value <= hi:
            return None
        return f"{self.name} = {self.describe(float(value))} is outside the start region [{lo:g}, {hi:g}]"

    def _set_violation(self, value: object) -> str | None:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return f"{self.name} must map chosen items to levels, e.g. {{{self.items[0]!r}: {self.levels[0]!r}}}, got {value!r}"  # type: ignore[index]
        unknown = sorted(set(value) - set(self.items or ()))
        if unknown:
            return f"{self.name}: {unknown} are not among its items {list(self.items or ())}"
        bad = sorted(f"{k}={v}" for k, v in value.items() if v not in self.levels)
        if bad:
            return f"{self.name}: levels in {bad} are not among {list(self.levels)}"
        if not self.min_items <= len(value) <= self.most_items:
            return f"{self.name} chooses {len(value)} items; it must choose between {self.min_items} and {self.most_items}"
        return None

    def describe(self, value: object) -> str:
        """A value in words, e.g. `0.65 U/h`, `STAT1`, `Gata1 oe + Pu1 ko`, `none`."""
        if isinstance(value, dict):
            return " + ".join(f"{k} {v}" if len(self.levels) > 1 else k for k, v in sorted(value.items())) or "none"
        if isinstance(value, str):
            return value
        text = f"{value:.3g}" if isinstance(value, float) and self.kind != "integer" else f"{value:g}"
        return f"{text} {self.unit}" if self.unit else text


def _check_names(variable: str, field: str, names: Sequence[str]) -> None:
    if not names:
        raise ValueError(f"variable {variable!r}: {field} must not be empty")
    if len(set(names)) != len(names):
        raise ValueError(f"variable {variable!r}: {field} must be unique, got {list(names)}")
    if any(not n.strip() for n in names):
        raise ValueError(f"variable {variable!r}: {field} must be non-blank names")


class Series(Frozen):
    """A time course the lab reports (a species, a gene's mean expression, glucose): its name, unit,
    and physical bounds (a concentration is never negative; a fraction stays in [0, 1]). The world
    model learns the declared series; a prediction outside the bounds breaks the world's constraints."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=LIMITS["name"])
    unit: Unit = ""
    lower: Magnitude | None = 0.0
    upper: Magnitude | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _ordered(self) -> Series:
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"series {self.name!r}: lower ({self.lower:g}) must be below upper ({self.upper:g})")
        return self


ReadoutStat = Literal["value", "final", "min", "max", "mean", "auc", "time_in_range", "time_above", "time_below"]


class Readout(Frozen):
    """A number one experiment yields. With no `series`, the lab reports it (`stat: value`); with a
    series, it is computed from that series' time course, identically on the lab's result and on the
    world model's sampled trajectories:

    - `final`, `min`, `max`, `mean`: of the series' samples;
    - `auc`: the area under the series over time (trapezoids; unit x minutes);
    - `time_in_range`: the fraction of samples in [`low`, `high`];
    - `time_above` / `time_below`: the fraction of samples above / below `threshold`.

    `binary` marks a 0/1 readout (a screen's hit): its surprise is judged by the predicted probability.
    `lower` / `upper` declare the readout's physical bounds where they are not implied (e.g. a lab-reported
    fraction: `lower: 0, upper: 1`); a bound the objective reaches is its ceiling (`bounds`, `AtCeiling`).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=LIMITS["name"])
    series: str | None = Field(default=None, max_length=LIMITS["name"])
    stat: ReadoutStat = "value"
    low: Magnitude | None = None
    high: Magnitude | None = None
    threshold: Magnitude | None = None
    unit: Unit = ""
    binary: bool = False
    lower: Magnitude | None = None
    upper: Magnitude | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _check_stat(self) -> Readout:
        if (self.series is None) != (self.stat == "value"):
            raise ValueError(
                f"readout {self.name!r}: give a series with a statistic of it, or neither (a number the lab reports)"
            )
        if self.stat == "time_in_range" and not (
            self.low is not None
            and self.high is not None
            and math.isfinite(self.low)
            and math.isfinite(self.high)
            and self.low < self.high
        ):
            raise ValueError(f"readout {self.name!r}: time_in_range needs finite low < high")
        if self.stat in ("time_above", "time_below") and (self.threshold is None or not math.isfinite(self.threshold)):
            raise ValueError(f"readout {self.name!r}: {self.stat} needs a finite threshold")
        for bound in (self.lower, self.upper):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"readout {self.name!r}: lower and upper must be finite numbers")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"readout {self.name!r}: lower ({self.lower}) must be below upper ({self.upper})")
        return self

    def bounds(self, series: Series | None = None) -> tuple[float | None, float | None]:
        """The values this readout can take, (lowest, highest), None where unbounded or unknown.

        A fraction of samples (`time_in_range`, `time_above`, `time_below`) and a binary readout lie in
        [0, 1]; `final`, `min`, `max` and `mean` of a series lie within the series' declared bounds; an
        `auc` of a series that is never negative is never negative. Declared `lower` / `upper` narrow these.
        """
        lo: float | None = None
        hi: float | None = None
        if self.binary or self.stat in ("time_in_range", "time_above", "time_below"):
            lo, hi = 0.0, 1.0
        elif series is not None and self.stat in ("final", "min", "max", "mean"):
            lo, hi = series.lower, series.upper
        elif series is not None and self.stat == "auc" and series.lower is not None and series.lower >= 0:
            lo = 0.0
        if self.lower is not None:
            lo = self.lower if lo is None else max(lo, self.lower)
        if self.upper is not None:
            hi = self.upper if hi is None else min(hi, self.upper)
        return lo, hi


class Objective(Frozen):
    """Which readout to optimise and in which direction (`target` needs `target_value`)."""

    readout: str = Field(max_length=LIMITS["name"])
    direction: Literal["maximize", "minimize", "target"] = "maximize"
    target_value: Magnitude | None = None

    @model_validator(mode="after")
    def _check_target(self) -> Objective:
        if self.direction == "target" and (self.target_value is None or not math.isfinite(self.target_value)):
            raise ValueError("objective.direction 'target' needs a finite objective.target_value")
        return self

    def utility(self, value: Any) -> Any:
        """The objective as a number to maximise (a float, or a numpy array / torch tensor elementwise)."""
        if self.direction == "maximize":
            return value
        if self.direction == "minimize":
            return -value
        return -abs(value - float(self.target_value))  # type: ignore[arg-type]

    def best_value(self, lower: float | None, upper: float | None) -> float | None:
        """The best value the readout can reach when it lies in [lower, upper] (None: unbounded that way):
        upper to maximise, lower to minimise, the point of the interval nearest target_value."""
        if self.direction == "maximize":
            return upper
        if self.direction == "minimize":
            return lower
        target = float(self.target_value)  # type: ignore[arg-type]
        return min(max(target, lower if lower is not None else target), upper if upper is not None else target)


class SafetyLimit(Frozen):
    """A probabilistic limit: P(event) <= max_probability, where the event is any value of `series`
    during the experiment (or the value of `readout`) below `below` or above `above`.

    The planner removes candidates whose predicted probability exceeds the limit; the observed
    outcome of a run experiment is checked against the same thresholds.
    """

    name: Name
    series: str | None = Field(default=None, max_length=LIMITS["name"])
    readout: str | None = Field(default=None, max_length=LIMITS["name"])
    below: Magnitude | None = None
    above: Magnitude | None = None
    max_probability: Number = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_event(self) -> SafetyLimit:
        if (self.series is None) == (self.readout is None):
            raise ValueError(f"safety limit {self.name!r}: name exactly one of series or readout")
        if self.below is None and self.above is None:
            raise ValueError(f"safety limit {self.name!r}: give below, above, or both")
        for bound in (self.below, self.above):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"safety limit {self.name!r}: thresholds must be finite numbers")
        if self.below is not None and self.above is not None and not self.below < self.above:
            raise ValueError(f"safety limit {self.name!r}: below ({self.below}) must be less than above ({self.above})")
        return self

    @property
    def target(self) -> str:
        """The series or readout the limit watches."""
        return self.series or self.readout or ""

    def describe(self, unit: str = "") -> str:
        """The event in words, e.g. `glucose < 54 mg/dL` or `IkBa > 0.8 or IkBa < 0.01`."""
        u = f" {unit}" if unit else ""
        parts = ([f"{self.target} < {self.below:g}{u}"] if self.below is not None else []) + (
            [f"{self.target} > {self.above:g}{u}"] if self.above is not None else []
        )
        return " or ".join(parts)


class Cost(Frozen):
    """What one experiment costs: `per_experiment`, plus `per_unit[v]` times the value of numeric
    variable v (e.g. a dose), plus `per_item[v]` for each item a set variable v chooses (e.g. each
    clamped gene)."""

    per_experiment: Magnitude = Field(default=1.0, gt=0.0)
    per_unit: dict[str, Magnitude] = Field(default_factory=dict)
    per_item: dict[str, Magnitude] = Field(default_factory=dict)
    unit: Unit = "experiment"

    @model_validator(mode="after")
    def _finite(self) -> Cost:
        values = [self.per_experiment, *self.per_unit.values(), *self.per_item.values()]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError("cost: every cost must be a finite number >= 0")
        return self

    def of(self, values: dict[str, Any]) -> float:
        """The cost of one intervention's values (a mapping of variable name to value)."""
        total = self.per_experiment
        for name, rate in self.per_unit.items():
            value = values.get(name)
            total += rate * float(value) if isinstance(value, (int, float)) else 0.0
        for name, rate in self.per_item.items():
            value = values.get(name)
            total += rate * len(value) if isinstance(value, dict) else 0.0
        return total

    @property
    def varies(self) -> bool:
        """True when the cost depends on the intervention."""
        return bool(self.per_unit or self.per_item)


class LabRef(Frozen):
    """Which lab adapter runs the experiments. `local` runs the world itself (in-process or in local
    worker processes); other adapters (e.g. `http`, `sila`, `pylabrobot`) reach a lab through a protocol,
    configured by `options` (e.g. `{"base_url": "http://127.0.0.1:8765"}`)."""

    adapter: str = Field(default="local", pattern=r"^[a-z][a-z0-9_]*$", max_length=LIMITS["name"])
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(Frozen):
    """`rounds` of `batch` experiments each (at most `LIMITS`' rounds, batch and experiments)."""

    rounds: Count = Field(ge=1, le=LIMITS["rounds"])
    batch: Count = Field(ge=1, le=LIMITS["batch"])

    @model_validator(mode="after")
    def _total(self) -> Budget:
        if self.rounds * self.batch > LIMITS["experiments"]:
            raise ValueError(
                f"rounds x batch = {self.rounds * self.batch:,} experiments is more than the {LIMITS['experiments']:,} "
                "a campaign may plan; lower rounds or batch"
            )
        return self

    @property
    def experiments(self) -> int:
        return self.rounds * self.batch


class AtCeiling(Frozen):
    """What the campaign does once nothing can improve on its best safe result: the objective's readout
    has reached the best value it can take (within `tolerance`, in the readout's units), e.g. a time
    in range of 1.0, a binary readout of 1, a `target` objective hit, a declared bound reached.

    - `stop` (default): end the campaign there and keep the rest of the budget; the stop and its reason
      are stored, logged, and shown by `status` and the summary.
    - `replicate`: spend one more round running the best intervention again, to confirm it (for a
      noisy lab), then stop.
    - `explore`: keep spending the budget on what the world model does not know: the planner ranks by
      information gain alone (safety still filters every candidate).

    Only the generic planner knows an incumbent; a world with its own planner (a screen, which
    looks for many hits, not one best) never reaches a ceiling.
    """

    action: Literal["stop", "replicate", "explore"] = "stop"
    tolerance: Magnitude = Field(default=0.0, ge=0.0)


_FIELDS = {"intervention variable": "interventions", "series": "series", "readout": "readouts"}


class CampaignSpec(Frozen):
    """Everything needed to start a campaign; see `specs/README` in the docs for each field."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=LIMITS["name"])
    question: str = Field(min_length=1, max_length=LIMITS["question"])
    world: str = Field(max_length=LIMITS["name"])
    world_options: dict[str, Any] = Field(default_factory=dict)
    objective: Objective
    interventions: tuple[Variable, ...] = Field(min_length=1, max_length=LIMITS["variables"])
    series: tuple[Series, ...] = Field(default=(), max_length=LIMITS["series"])
    readouts: tuple[Readout, ...] = Field(default=(), max_length=LIMITS["readouts"])
    safety: tuple[SafetyLimit, ...] = Field(default=(), max_length=LIMITS["safety"])
    cost: Cost = Cost()
    budget: Budget
    at_ceiling: AtCeiling = AtCeiling()
    lab: LabRef = LabRef()
    world_model: Literal["auto", "series", "ensemble", "gp"] = "auto"
    seed: Count = Field(default=0, ge=0, lt=LIMITS["seed"])
    _source: Any = PrivateAttr(default=None)
    """Where each field stood in the file the spec was read from (`SourceMap`), for error messages."""

    def __eq__(self, other: object) -> bool:  # the fields alone: where a spec was read from is not part of it
        return isinstance(other, CampaignSpec) and self.__dict__ == other.__dict__

    __hash__ = Frozen.__hash__

    @model_validator(mode="after")
    def _unique_names(self) -> CampaignSpec:
        for what, names in (
            ("intervention variable", [v.name for v in self.interventions]),
            ("series", [s.name for s in self.series]),
            ("readout", [r.name for r in self.readouts]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{_FIELDS[what]}: {what} names must be unique, got {names}; rename the repeated one")
        kinds = {v.name: v.kind for v in self.interventions}
        for field, want in (("per_unit", ("continuous", "integer")), ("per_item", ("set",))):
            for name in getattr(self.cost, field):
                if kinds.get(name) not in want:
                    raise ValueError(
                        f"cost.{field}: {name!r} is not a {' or '.join(want)} variable of the spec; "
                        f"name one of {[v.name for v in self.interventions if v.kind in want]} or remove it"
                    )
        return self

    def readout(self, name: str) -> Readout | None:
        """The spec's declaration of readout `name` (None when the spec does not declare it)."""
        return next((r for r in self.readouts if r.name == name), None)

    def series_named(self, name: str) -> Series | None:
        """The spec's declaration of series `name` (None when the spec does not declare it)."""
        return next((s for s in self.series if s.name == name), None)

    def cost_of(self, values: dict[str, Any]) -> float:
        """What an intervention with these values costs (see `Cost`)."""
        return self.cost.of(values)

    def variable(self, name: str) -> Variable:
        for v in self.interventions:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def variable_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.interventions)

    def fingerprint(self) -> str:
        """A short hash of the spec's content: two specs with the same content share it."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_overrides(self, **changes: Any) -> CampaignSpec:
        """A validated copy with top-level fields replaced (e.g. `budget`, `seed`); SpecError, one line
        per problem, when the result is not a valid spec. Unchanged fields keep their place in the file."""
        from ._spec_file import validate_spec_data

        data = self.model_dump(mode="json")
        data.update({k: (v.model_dump(mode="json") if isinstance(v, BaseModel) else v) for k, v in changes.items()})
        source = self._source.without(changes) if self._source is not None else None
        return validate_spec_data(data, source, f"spec {self.name!r} with {', '.join(sorted(changes))} changed")

    def where(self, problem: str) -> str:
        """`problem` (a line that starts with the field at fault, e.g. `world_options.hours: ...`) with
        the line of that field in the spec's file, when the spec was read from one."""
        return self._source.locate(problem) if self._source is not None else problem


def default_spec_path() -> Path:
    """The built-in default campaign: a virtual patient's insulin regimen."""
    return Path(__file__).parent / "specs" / "patient_regimen.yaml"
