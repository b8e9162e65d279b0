"""The records that flow through one turn of the loop, from proposal to observation.

All are frozen pydantic models and round-trip through JSON, so the store can keep them verbatim.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Literal

from pydantic import Field, model_validator

from ._spec import CampaignSpec, Frozen, Value
from .errors import InterventionError

__all__ = [
    "Intervention",
    "Experiment",
    "Trajectory",
    "Observation",
    "Transition",
    "Hypothesis",
    "Proposal",
    "ScoreBreakdown",
    "Band",
    "RankedProposal",
    "SafetyRemoval",
    "Ranking",
    "Decision",
    "Ticket",
    "CeilingReached",
    "EarlyStop",
]


class Intervention(Frozen):
    """One point of the intervention space, e.g. `{"basal": 0.65, "carb_ratio": 23.0}`, `{"gene": "STAT1"}`
    or, with a set variable, `{"cocktail": {"Gata1": "oe", "Pu1": "ko"}}`."""

    values: dict[str, Value]

    @model_validator(mode="after")
    def _finite(self) -> Intervention:
        bad = {k: v for k, v in self.values.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise ValueError(f"intervention values must be finite numbers, got {bad}")
        return self

    def canonical(self, digits: int = 6) -> dict[str, Value]:
        """Numbers rounded to `digits` significant figures, sorted by name: the identity of a point."""
        return {k: _rounded(self.values[k], digits) for k in sorted(self.values)}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()[:16]

    def number(self, name: str) -> float:
        """The value of the numeric variable `name` as a float (TypeError for a name or a set)."""
        value = self.values[name]
        if isinstance(value, (str, dict)):
            raise TypeError(f"variable {name!r} is not a number here, got {value!r}")
        return float(value)

    def violations(self, spec: CampaignSpec) -> list[str]:
        """Every way this point breaks the spec's hard limits, in words (empty when valid)."""
        problems = []
        names = set(spec.variable_names)
        missing, extra = names - set(self.values), set(self.values) - names
        if missing:
            problems.append(f"missing variable(s) {sorted(missing)}")
        if extra:
            problems.append(f"unknown variable(s) {sorted(extra)}; the space has {sorted(names)}")
        problems += [p for var in spec.interventions if (p := var.violation(self.values.get(var.name)))]
        return problems

    def check(self, spec: CampaignSpec) -> Intervention:
        """Return self when valid against the spec, else raise InterventionError with every reason."""
        problems = self.violations(spec)
        if problems:
            raise InterventionError("; ".join(problems), intervention=self)
        return self

    def describe(self, spec: CampaignSpec | None = None) -> str:
        if spec is None:
            return ", ".join(f"{k}={_short(v)}" for k, v in self.canonical().items())
        return ", ".join(f"{v.name}={v.describe(self.values[v.name])}" for v in spec.interventions if v.name in self.values)

    def cost(self, spec: CampaignSpec) -> float:
        """What running this intervention costs under the spec's cost model."""
        return spec.cost_of(self.values)


def _rounded(value: Value, digits: int) -> Value:
    if isinstance(value, dict):
        return {k: value[k] for k in sorted(value)}
    return value if isinstance(value, str) else float(f"{value:.{digits}g}")


def _short(value: Value) -> str:
    if isinstance(value, dict):
        return "+".join(f"{k}:{v}" for k, v in sorted(value.items())) or "none"
    return value if isinstance(value, str) else f"{value:.3g}"


class Experiment(Frozen):
    """An intervention approved to run, with its context and its idempotency key.

    The key hashes the campaign, the intervention and the context, so an experiment keeps its key
    across retries and resumes and the lab runs it at most once.
    """

    campaign_id: str
    round: int
    intervention: Intervention
    context: dict[str, Any] = Field(default_factory=dict)
    hypothesis_ids: tuple[str, ...] = ()
    approved_by: str
    approval_note: str = ""

    @property
    def key(self) -> str:
        blob = json.dumps(
            {"campaign": self.campaign_id, "x": self.intervention.canonical(), "context": self.context},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


class Ticket(Frozen):
    """A lab's receipt for a submitted experiment; `poll` takes it back."""

    experiment_key: str
    lab: str
    lab_ref: str


class Trajectory(Frozen):
    """Readouts over time: `series[name][i]` was measured at `times_min[i]` minutes from the start."""

    times_min: tuple[float, ...]
    series: dict[str, tuple[float, ...]]
    units: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aligned(self) -> Trajectory:
        n = len(self.times_min)
        bad = {k: len(v) for k, v in self.series.items() if len(v) != n}
        if bad:
            raise ValueError(f"every series must have {n} points (one per time), got {bad}")
        nonfinite = [k for k, v in self.series.items() if not all(math.isfinite(x) for x in v)]
        if nonfinite:
            raise ValueError(f"series {nonfinite} hold non-finite values")
        return self


class Observation(Frozen):
    """What the lab returned for one experiment."""

    experiment_key: str
    status: Literal["ok", "failed", "rejected", "cancelled"]
    trajectory: Trajectory | None = None
    readouts: dict[str, float] = Field(default_factory=dict)
    message: str = ""
    lab: str = ""
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _finite_readouts(cls, data: Any) -> Any:
        """A readout the lab reported as NaN or infinite is no readout: it leaves `readouts` and is kept
        in `raw["non_finite_readouts"]` as text ("nan", "inf"); any other non-finite number in `raw`
        becomes null. So the observation can be stored (JSON has no NaN) and says what the lab sent."""
        if not isinstance(data, dict):
            return data
        readouts, raw = data.get("readouts"), data.get("raw")
        bad = (
            {k: v for k, v in readouts.items() if isinstance(v, float) and not math.isfinite(v)}
            if isinstance(readouts, dict)
            else {}
        )
        if not bad and not _has_non_finite(raw):
            return data
        raw = _finite_or_null(raw) if isinstance(raw, dict) else {}
        if bad:
            raw = {**raw, "non_finite_readouts": {k: str(v) for k, v in bad.items()}}
            readouts = {k: v for k, v in readouts.items() if k not in bad}  # type: ignore[union-attr]
        return {**data, "readouts": readouts if readouts is not None else {}, "raw": raw}

    @model_validator(mode="after")
    def _ok_has_data(self) -> Observation:
        if self.status == "ok" and self.trajectory is None and not self.readouts:
            raise ValueError("an 'ok' observation must carry a trajectory or readouts")
        return self


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


def _finite_or_null(value: Any) -> Any:
    """`value` with every NaN or infinite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


class Transition(Frozen):
    """`state_before + action -> state_after` over `dt_min`, with the model's prediction beside it.

    The unit of a shareable transition dataset: the world model trains on these, and the report
    shows the predicted mean and standard deviation next to what was observed.
    """

    experiment_key: str
    t_min: float
    dt_min: float
    state_before: dict[str, float]
    action: dict[str, float]
    state_after: dict[str, float]
    predicted_mean: dict[str, float] | None = None
    predicted_std: dict[str, float] | None = None


class Hypothesis(Frozen):
    """A statement about the world, the candidates it motivated, and the evidence so far."""

    id: str
    statement: str
    source: str
    round: int
    motivated: tuple[str, ...] = ()
    evidence_for: tuple[str, ...] = ()
    evidence_against: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if not self.evidence_for and not self.evidence_against:
            return "untested"
        if len(self.evidence_for) > len(self.evidence_against):
            return "supported"
        if len(self.evidence_against) > len(self.evidence_for):
            return "weakened"
        return "mixed"


class Proposal(Frozen):
    """A candidate intervention from a proposer, with the hypothesis that motivated it."""

    intervention: Intervention
    hypothesis_id: str | None = None
    rationale: str = ""
    source: str = "offline"


class ScoreBreakdown(Frozen):
    """How the planner scored one candidate. `acquisition` is what the ranking sorts by.

    Model-based fields are None when there was no fitted world model yet (the first round).
    `expected_value`/`value_std` are the predicted objective readout's mean and standard deviation.
    """

    info_gain: float | None = None
    expected_improvement: float | None = None
    expected_value: float | None = None
    value_std: float | None = None
    cost: float
    p_unsafe: float | None = None
    acquisition: float


class Band(Frozen):
    """A predicted trajectory of one series: median and a central interval at `level`, per time."""

    series: str
    level: float
    times_min: tuple[float, ...]
    lower: tuple[float, ...]
    median: tuple[float, ...]
    upper: tuple[float, ...]


class RankedProposal(Frozen):
    proposal: Proposal
    rank: int
    score: ScoreBreakdown
    selected: bool
    band: Band | None = None


class SafetyRemoval(Frozen):
    """A candidate removed before ranking; `p_unsafe` is None when no model could predict it."""

    proposal: Proposal
    p_unsafe: float | None
    limit: str
    reason: str


class Ranking(Frozen):
    """One round's ranking: every scored candidate, the selected batch, and what safety removed."""

    round: int
    ranked: tuple[RankedProposal, ...]
    removed: tuple[SafetyRemoval, ...] = ()
    model_version: str | None = None
    note: str = ""

    @property
    def selected(self) -> tuple[RankedProposal, ...]:
        return tuple(r for r in self.ranked if r.selected)


class Decision(Frozen):
    """A review decision on one ranked proposal (`edit` carries the edited intervention)."""

    proposal_key: str
    action: Literal["approve", "reject", "edit"]
    by: str
    reason: str = ""
    edited: Intervention | None = None

    @model_validator(mode="after")
    def _edit_has_values(self) -> Decision:
        if self.action == "edit" and self.edited is None:
            raise ValueError("an 'edit' decision needs the edited intervention")
        if self.action == "reject" and not self.reason.strip():
            raise ValueError("a 'reject' decision needs a reason")
        return self


class CeilingReached(Frozen):
    """The campaign's best safe result reached the best value its objective can take: nothing can improve
    on it. Stored once (an `event` keyed `ceiling`), at the end of the round whose results reached it."""

    round: int
    readout: str
    best: float  # the objective readout of the best safe result
    ceiling: float  # the best value the readout can take (`Readout.bounds`, `Objective.best_value`)
    experiment_key: str
    intervention: Intervention
    action: Literal["stop", "replicate", "explore"]  # the spec's `at_ceiling.action`
    reason: str


class EarlyStop(Frozen):
    """The campaign ended before its budget was spent (an `event` keyed `early_stop`, stored once)."""

    round: int  # the last round run
    rounds: int  # the budget's rounds
    experiments: int  # experiments run
    budget_experiments: int  # rounds x batch
    reason: str

    @property
    def rounds_kept(self) -> int:
        return self.rounds - self.round

    def describe(self) -> str:
        """The stop in words, e.g. `stopped after round 3 of 6 (12 of 24 experiments run): ...`."""
        return (
            f"stopped after round {self.round} of {self.rounds} ({self.experiments} of {self.budget_experiments} "
            f"experiments run, {self.rounds_kept} round(s) of budget kept): {self.reason}"
        )
