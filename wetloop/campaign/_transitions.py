"""Transition records: one experiment of a campaign as a shareable row, and their versioned schema.

A transition is `baseline state + intervention -> follow-up state` over `dt_min`, with everything
that explains it: the world and its options, the world model's prediction with its uncertainty,
whether the result surprised the model, the hypotheses that motivated it with their evidence, who
approved it and how, the lab and simulator, and when each step happened. `wetloop export` writes
these; `transition_schema()` is their JSON Schema (published as docs/transition-schema.json).

A result that failed validation is quarantined, never a transition: `QuarantineRecord` keeps it
apart with the raw payload the lab sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from ._records import Band, Intervention, Observation, Trajectory
from ._spec import Frozen, Value

__all__ = [
    "SCHEMA_VERSION",
    "ApprovalRecord",
    "HypothesisRecord",
    "LabRecord",
    "PredictionRecord",
    "QuarantineRecord",
    "StateRecord",
    "TransitionRecord",
    "history_of",
    "transition_schema",
]

SCHEMA_VERSION = "1.0"
"""The transition schema's version: the major number changes when a field is removed or changes
meaning, the minor number when a field is added (a reader of 1.x reads every 1.y)."""


class StateRecord(Frozen):
    """Samples of the time courses over a span: `series[name][i]` was measured at `times_min[i]`
    minutes from the start of the experiment (the intervention begins at `TransitionRecord.t_min`)."""

    times_min: tuple[float, ...]
    series: dict[str, tuple[float, ...]]
    units: dict[str, str] = Field(default_factory=dict)


class PredictionRecord(Frozen):
    """What the world model predicted for this experiment when the planner selected it.

    `mean` and `std` are the predicted objective readout's mean and standard deviation (the spread of
    the ensemble's members, or the posterior's); `lower`/`upper` are the central `level` interval of a
    normal with that mean and spread, clipped to the readout's bounds. `band` is the predicted interval
    of a time course, per time. All are None in a round without a fitted model (the first round)."""

    model_version: str | None = None
    readout: str
    mean: float | None = None
    std: float | None = None
    level: float = 0.9
    lower: float | None = None
    upper: float | None = None
    p_unsafe: float | None = None
    expected_improvement: float | None = None
    info_gain: float | None = None
    acquisition: float | None = None
    rank: int | None = None
    band: Band | None = None


class HypothesisRecord(Frozen):
    """A hypothesis that motivated the experiment, as it stood when the campaign was exported."""

    id: str
    statement: str
    source: str
    round: int
    status: Literal["untested", "supported", "weakened", "mixed"]
    evidence_for: tuple[str, ...] = ()
    evidence_against: tuple[str, ...] = ()


class ApprovalRecord(Frozen):
    """Who approved the experiment and how: `action` is the review decision (`approve`, or `edit` with
    the values first proposed in `proposed`); `by` is `person:<name>` or `policy:<name>`."""

    by: str
    note: str = ""
    action: Literal["approve", "edit"] | None = None
    reason: str = ""
    proposed: dict[str, Value] | None = None


class LabRecord(Frozen):
    """Which lab ran the experiment: its name, the spec's adapter, the simulator and its version where
    the lab reports one, and every detail the lab returned with the result (`details`)."""

    name: str = ""
    adapter: str
    simulator: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TransitionRecord(Frozen):
    """One experiment of a campaign: `baseline + intervention -> follow_up` over `dt_min` minutes.

    `status` is the lab's answer (`ok`, `failed`, `rejected`, `cancelled`) or `pending` before one came
    back; only an `ok` record has a follow-up state. `baseline` holds the time courses up to the
    intervention (the samples at times <= `t_min`); `follow_up` the whole observed trajectory; a world
    without time courses (a screen) has neither, only `readouts`.
    """

    schema_version: str = SCHEMA_VERSION
    campaign_id: str
    spec_name: str
    spec_fingerprint: str
    world: str
    world_options: dict[str, Any] = Field(default_factory=dict)
    round: int
    experiment_key: str
    intervention: dict[str, Value]
    intervention_units: dict[str, str] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "failed", "rejected", "cancelled", "pending"]
    message: str = ""
    t_min: float = 0.0
    dt_min: float | None = None
    baseline: StateRecord | None = None
    follow_up: StateRecord | None = None
    readouts: dict[str, float] = Field(default_factory=dict)
    objective: str
    objective_value: float | None = None
    unsafe: bool = False
    prediction: PredictionRecord | None = None
    surprise: bool = False
    surprise_note: str | None = None
    band_outside_fraction: float | None = None
    hypotheses: tuple[HypothesisRecord, ...] = ()
    approval: ApprovalRecord
    lab: LabRecord
    wetloop_version: str
    approved_at: datetime
    submitted_at: datetime | None = None
    observed_at: datetime | None = None

    def history_item(self) -> tuple[Intervention, Observation] | None:
        """The record as the world model learns from it, (intervention, observation); None unless `ok`."""
        if self.status != "ok":
            return None
        trajectory = None
        if self.follow_up is not None:
            trajectory = Trajectory(times_min=self.follow_up.times_min, series=self.follow_up.series, units=self.follow_up.units)
        observation = Observation(
            experiment_key=self.experiment_key, status="ok", trajectory=trajectory, readouts=self.readouts, lab=self.lab.name
        )
        return Intervention(values=self.intervention), observation


class QuarantineRecord(Frozen):
    """A lab result that failed validation: never a transition, kept with the raw payload received."""

    schema_version: str = SCHEMA_VERSION
    campaign_id: str
    world: str
    round: int | None
    experiment_key: str
    intervention: dict[str, Value] | None = None
    reason: str
    raw: Any = None
    quarantined_at: datetime


def history_of(records: list[TransitionRecord]) -> list[tuple[Intervention, Observation]]:
    """The `ok` records as (intervention, observation) pairs, in order: what a world model fits on."""
    return [item for r in records if (item := r.history_item()) is not None]


def transition_schema() -> dict[str, Any]:
    """The JSON Schema of an export: `TransitionRecord` (each line of transitions.jsonl, each row of the
    Parquet file and the AnnData file once unflattened) and `QuarantineRecord` (quarantine.jsonl)."""
    transition = TransitionRecord.model_json_schema(mode="serialization")
    quarantine = QuarantineRecord.model_json_schema(mode="serialization")
    defs = {**transition.pop("$defs", {}), **quarantine.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"wetloop transition records, schema version {SCHEMA_VERSION}",
        "version": SCHEMA_VERSION,
        "anyOf": [{"$ref": "#/$defs/TransitionRecord"}, {"$ref": "#/$defs/QuarantineRecord"}],
        "$defs": {**defs, "TransitionRecord": transition, "QuarantineRecord": quarantine},
    }
