"""The simglucose world: a virtual type-1-diabetes patient (the UVA/Padova simulator's Python port).

An experiment is one simulated patient-day under an insulin regimen (basal rates by time of day, carb
ratios for meal boluses, optionally a correction factor); the day is the spec's fixed day or one drawn
from its distribution of days with a recorded seed. The lab reports the glucose trajectory, and the
readouts are computed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wetloop.campaign import (
    Budget,
    CampaignSpec,
    HypothesisDraft,
    Intervention,
    Number,
    Observation,
    ProposalContext,
    Readout,
    Series,
    default_spec_path,
    load_spec,
)
from wetloop.lab_adapters import ExecutorOptions

from .._base import CliTools, World, WorldOptions
from ._days import DayVariation
from ._readouts import glucose_range

Segments = str | list[tuple[Annotated[Number, Field(ge=0, lt=24)], Annotated[str, Field(max_length=64)]]]


class RegimenOptions(BaseModel):
    """`world_options.regimen`: which variables set the basal rate and carb ratio from which hour, and
    the correction bolus (see `_dosing.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    basal: Segments | None = Field(default=None, description="a variable, or [hour, variable] segments")
    carb_ratio: Segments | None = Field(default=None, description="a variable, or [hour, variable] segments")
    correction_factor: str | None = Field(default=None, max_length=64)
    correction_target: Number = Field(default=140.0, gt=0, le=400)
    correction_above: Number = Field(default=150.0, gt=0, le=400)


__all__ = ["SimglucoseWorld", "SimglucoseOptions"]


class SimglucoseOptions(WorldOptions):
    """`world_options` of a simglucose spec (each checked against what simglucose ships when the lab starts)."""

    patient: str = Field(max_length=64)
    hours: Number = Field(default=24.0, gt=0, le=24 * 14)
    meals: list[tuple[Annotated[Number, Field(ge=0)], Annotated[Number, Field(ge=0, le=1000)]]] | None = Field(
        default=None, max_length=100
    )
    sensor: str = Field(default="Dexcom", max_length=64)
    pump: str = Field(default="Insulet", max_length=64)
    glucose_range: tuple[Annotated[Number, Field(ge=0, le=1000)], Annotated[Number, Field(ge=0, le=1000)]] = (70.0, 180.0)
    prehistory_basal: Number | None = Field(default=None, gt=0, le=100)
    days: DayVariation | None = Field(default=None, description="a distribution of days, instead of one fixed day (meals)")
    regimen: RegimenOptions | None = None
    start_region: Literal["spec", "body_weight"] = Field(
        default="spec",
        description="body_weight: each regimen variable's start region is scaled from the patient's body weight",
    )

    @model_validator(mode="after")
    def _ordered(self) -> SimglucoseOptions:
        low, high = self.glucose_range
        if not low < high:
            raise ValueError(f"glucose_range [{low:g}, {high:g}] is reversed or empty; give [low, high] mg/dL with low < high")
        return self


class SimglucoseWorld(World):
    name = "simglucose"
    summary = "a virtual type-1-diabetes patient (simglucose): insulin regimens, glucose over a day"
    Options = SimglucoseOptions
    experiment_noun = ("day", "days")  # an experiment is one simulated patient-day
    lab_options = ExecutorOptions  # lab.options: executor (process | ray), address, retries

    def series(self, spec: CampaignSpec) -> tuple[Series, ...]:
        return (Series(name="glucose", unit="mg/dL", description="blood glucose"),)

    def readouts(self, spec: CampaignSpec) -> tuple[Readout, ...]:
        low, high = glucose_range(spec)
        own = (
            Readout(
                name="time_in_range",
                series="glucose",
                stat="time_in_range",
                low=low,
                high=high,
                description=f"fraction of the day with glucose in [{low:g}, {high:g}] mg/dL",
            ),
            Readout(name="min_glucose", series="glucose", stat="min", unit="mg/dL"),
            Readout(name="mean_glucose", series="glucose", stat="mean", unit="mg/dL"),
            Readout(name="max_glucose", series="glucose", stat="max", unit="mg/dL"),
        )
        return own + tuple(r for r in spec.readouts if r.name not in {o.name for o in own})

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        problems = super().check_spec(spec)
        if any(p.startswith("world_options") for p in problems):
            return problems
        from ._options import option_problems

        return problems + option_problems(spec)

    def validate_spec(self, spec: CampaignSpec) -> CampaignSpec:
        """The spec the campaign runs: with `start_region: body_weight`, its start regions scaled from
        the patient's body weight (the stored spec then shows them)."""
        spec = super().validate_spec(spec)
        if spec.world_options.get("start_region") == "body_weight":
            from ._start import body_weight_start

            spec = body_weight_start(spec)
        return spec

    def example_spec(self) -> CampaignSpec | None:
        spec = load_spec(default_spec_path())
        options = {**spec.world_options, "hours": 4, "meals": [[1.0, 45.0], [2.5, 60.0]]}
        return spec.with_overrides(world_options=options, budget=Budget(rounds=2, batch=2))

    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        from ._lab import SimglucoseLab

        return SimglucoseLab(spec, **kwargs)

    def new_model(self, spec: CampaignSpec, config: Any = None) -> Any:
        from ._model import TrajectoryWorldModel

        return TrajectoryWorldModel(spec, config)

    def light_model_config(self) -> Any:
        from ._config import WorldModelConfig

        return WorldModelConfig(members=5, hidden=32, layers=2, epochs=10, min_steps=150, particles=4)

    def load_model(self, path: str | Path, spec: CampaignSpec) -> Any:
        from ._model import TrajectoryWorldModel

        return TrajectoryWorldModel.load(path, spec)

    def forecast(self, model: Any, spec: CampaignSpec, interventions: Sequence[Intervention]) -> Any:
        """The model's glucose trajectory samples (its one series) and the readouts computed from them."""
        import torch

        from wetloop.worldmodel import OutcomeSamples

        with torch.no_grad():
            glucose = model.sample(interventions).transpose(0, 1).double()  # (S, n, T)
        return OutcomeSamples(model.outcome.readouts(glucose), {"glucose": glucose}, model.botorch_model().times_min)

    def fit_data(self, history: Sequence[tuple[Intervention, Observation]]) -> list[tuple[Intervention, Observation]]:
        return [(x, o) for x, o in history if o.status == "ok" and o.trajectory is not None]

    def fit_summary(self, report: Any) -> str:
        return f"world model refit on {report.n_days} days ({report.n_transitions} transitions) in {report.seconds:.1f} s"

    def result_problem(self, obs: Observation) -> str | None:
        if obs.trajectory is not None and "glucose" not in obs.trajectory.series:
            return "result trajectory has no 'glucose' series"
        return None

    def register_cli(self, bench: Any, tools: CliTools) -> None:
        """`wetloop bench patient`: our campaign vs random search vs the simulator's own controller;
        `wetloop bench ray`: a batch of days through the process pool and through Ray."""
        from ._cli import register

        register(bench, tools)

    def hypotheses(
        self, ctx: ProposalContext, safe: list[tuple[Intervention, Observation, float]], n: int
    ) -> list[HypothesisDraft]:
        from ._hypotheses import regimen_hypotheses

        return regimen_hypotheses(ctx, safe, n)
