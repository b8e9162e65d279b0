"""The campaign spec: the question, the objective, the intervention space, safety, cost, budget.

A spec is what a person writes (YAML) to start a campaign. Everything else in the loop reads it;
nothing changes it once the campaign has started (it is frozen and stored with the campaign).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SpecError

__all__ = [
    "Frozen",
    "Variable",
    "Objective",
    "SafetyLimit",
    "Cost",
    "LabRef",
    "Budget",
    "CampaignSpec",
    "load_spec",
    "default_spec_path",
]


class Frozen(BaseModel):
    """Base of every record in the shared language: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Variable(Frozen):
    """One named variable of the intervention space: continuous (a bounded number) or categorical.

    Continuous: `lower`/`upper` are hard limits (the lab rejects any experiment outside them); `start`
    is the conservative region the first round is drawn from, before the world model has seen any data
    (a safe seed set, as in safe Bayesian optimisation); `scale` is how the space is searched.
    Categorical (e.g. the gene to knock out): a name; `choices` lists the allowed ones, or is None when
    the world decides (a screen knows its genes) and rejects unknown names itself.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    unit: str = ""
    kind: Literal["continuous", "categorical"] = "continuous"
    lower: float | None = None
    upper: float | None = None
    start: tuple[float, float] | None = None
    scale: Literal["linear", "log"] = "linear"
    choices: tuple[str, ...] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check_bounds(self) -> Variable:
        if self.kind == "categorical":
            if self.lower is not None or self.upper is not None or self.start is not None:
                raise ValueError(f"variable {self.name!r}: a categorical variable has no lower/upper/start")
            return self
        if self.lower is None or self.upper is None:
            raise ValueError(f"variable {self.name!r}: a continuous variable needs lower and upper")
        if self.choices is not None:
            raise ValueError(f"variable {self.name!r}: choices are for categorical variables")
        if not self.lower < self.upper:
            raise ValueError(f"variable {self.name!r}: lower ({self.lower}) must be below upper ({self.upper})")
        if self.scale == "log" and self.lower <= 0:
            raise ValueError(f"variable {self.name!r}: a log-scale variable needs lower > 0, got {self.lower}")
        if self.start is not None:
            lo, hi = self.start
            if not (self.lower <= lo <= hi <= self.upper):
                raise ValueError(
                    f"variable {self.name!r}: start {list(self.start)} must lie inside "
                    f"[{self.lower}, {self.upper}] with start[0] <= start[1]"
                )
        return self

    def _bounds(self) -> tuple[float, float]:
        if self.lower is None or self.upper is None:
            raise TypeError(f"variable {self.name!r} is categorical: it has no numeric scale")
        return self.lower, self.upper

    @property
    def start_bounds(self) -> tuple[float, float]:
        return self.start if self.start is not None else self._bounds()

    def to_unit(self, value: float) -> float:
        """Map a value in [lower, upper] to [0, 1] on the variable's scale (log or linear)."""
        lo, hi = self._bounds()
        if self.scale == "log":
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)

    def from_unit(self, u: float) -> float:
        """Inverse of `to_unit`."""
        lo, hi = self._bounds()
        if self.scale == "log":
            return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        return lo + u * (hi - lo)

    def violation(self, value: float | str | None) -> str | None:
        """Why `value` breaks this variable's hard limits, in words (None when it is valid)."""
        if value is None:
            return None
        if self.kind == "categorical":
            if not isinstance(value, str):
                return f"{self.name} must be a name, got {value!r}"
            if self.choices is not None and value not in self.choices:
                return f"{self.name} = {value!r} is not one of the allowed choices"
            return None
        if isinstance(value, str):
            return f"{self.name} must be a number in {self.unit}, got {value!r}"
        lo, hi = self._bounds()
        if not lo <= value <= hi:
            return f"{self.name} = {value:g} {self.unit} is outside the hard limits [{lo:g}, {hi:g}]"
        return None


class Objective(Frozen):
    """Which readout to optimise and in which direction (`target` needs `target_value`)."""

    readout: str
    direction: Literal["maximize", "minimize", "target"] = "maximize"
    target_value: float | None = None

    @model_validator(mode="after")
    def _check_target(self) -> Objective:
        if self.direction == "target" and self.target_value is None:
            raise ValueError("objective.direction 'target' needs objective.target_value")
        return self

    def utility(self, value: Any) -> Any:
        """The objective as a number to maximise (a float, or a numpy array / torch tensor elementwise)."""
        if self.direction == "maximize":
            return value
        if self.direction == "minimize":
            return -value
        return -abs(value - float(self.target_value))  # type: ignore[arg-type]


class SafetyLimit(Frozen):
    """A probabilistic limit: P(any value of `series` below `below` during the experiment) <= max_probability.

    The planner removes candidates whose predicted probability exceeds the limit; the observed
    outcome of a run experiment is checked against the same threshold.
    """

    name: str
    series: str
    below: float
    max_probability: float = Field(gt=0.0, lt=1.0)


class Cost(Frozen):
    per_experiment: float = Field(default=1.0, gt=0.0)
    unit: str = "experiment"


class LabRef(Frozen):
    """Which lab adapter runs the experiments. `local` runs the world itself (in-process or in local
    worker processes); other adapters (e.g. `http`, `sila`, `pylabrobot`) reach a lab through a protocol,
    configured by `options` (e.g. `{"base_url": "http://127.0.0.1:8765"}`)."""

    adapter: str = "local"
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(Frozen):
    rounds: int = Field(ge=1)
    batch: int = Field(ge=1)

    @property
    def experiments(self) -> int:
        return self.rounds * self.batch


class CampaignSpec(Frozen):
    """Everything needed to start a campaign; see `specs/README` in the docs for each field."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    question: str
    world: str
    world_options: dict[str, Any] = Field(default_factory=dict)
    objective: Objective
    interventions: tuple[Variable, ...] = Field(min_length=1)
    safety: tuple[SafetyLimit, ...] = ()
    cost: Cost = Cost()
    budget: Budget
    lab: LabRef = LabRef()
    seed: int = 0

    @model_validator(mode="after")
    def _unique_names(self) -> CampaignSpec:
        names = [v.name for v in self.interventions]
        if len(set(names)) != len(names):
            raise ValueError(f"intervention variable names must be unique, got {names}")
        return self

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
        """A validated copy with top-level fields replaced (e.g. `budget`, `seed`)."""
        data = self.model_dump(mode="json")
        data.update({k: (v.model_dump(mode="json") if isinstance(v, BaseModel) else v) for k, v in changes.items()})
        return CampaignSpec.model_validate(data)


def default_spec_path() -> Path:
    """The built-in default campaign: a virtual patient's insulin regimen."""
    return Path(__file__).parent / "specs" / "patient_regimen.yaml"


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign spec from YAML; errors name the file and the field at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist; pass the path of a YAML campaign spec") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"spec file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"spec file {path} must hold a mapping of fields, got {type(raw).__name__}")
    try:
        return CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"spec file {path} is invalid:\n" + "\n".join(lines)) from None
