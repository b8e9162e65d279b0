"""`World`: what one kind of experiment brings to the loop, with generic defaults for everything.

The loop asks a campaign's world (through `campaign.get_world(spec.world)`) for its lab, its world
model, its planner and its offline proposer, and for the readouts and series it knows. A new world
overrides what is specific to it and inherits the rest: a world with declared series gets the
generic time-course ensemble, one with scalar readouts the scalar ensemble (or a GP), the generic
planner and the generic offline proposer.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from wetloop.campaign import (
    CampaignSpec,
    HypothesisDraft,
    Intervention,
    Observation,
    ProposalContext,
    Readout,
    ReportTable,
    Series,
    SpecError,
    problem_lines,
)

__all__ = ["CliTools", "World", "WorldOptions"]

History = Sequence[tuple[Intervention, Observation]]


class WorldOptions(BaseModel):
    """Base of a world's typed `world_options`: unknown keys are errors, values are checked, every
    number is finite (type numbers as `campaign.Number` so that `true` is not read as 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CliTools(Protocol):
    """What the `wetloop` CLI lends a world's own commands (`World.register_cli`): a world never
    imports the agent, so the CLI hands over what a benchmark needs from it."""

    log: Any
    """A rich Console on stderr, for progress."""

    def create(
        self, spec: CampaignSpec, run_dir: Path, *, learn: bool = True, shuffle_feedback: bool = False, prior: Sequence[str] = ()
    ) -> Any:
        """A new campaign of the loop in `run_dir` (autonomous review): a context manager with `run()`,
        `store` and `campaign_id`. The controls: `learn=False` never fits a model (the campaign's prior
        every round); `shuffle_feedback=True` permutes each round's results among its experiments
        before the loop learns from them. `prior`: exports of other campaigns (`export`) pooled with
        the campaign's own results to fit its world model."""
        ...

    def export(self, run_dir: Path, out_dir: Path) -> Path:
        """The transitions of the campaign in `run_dir` as JSON Lines in `out_dir` (`wetloop export`); the file."""
        ...

    def work_dir(self, name: str) -> Path:
        """A fresh folder for a benchmark's campaigns, `<runs root>/<name>-<time>`."""
        ...

    def ax(self, spec: CampaignSpec, cache_dir: Path, seed: int) -> tuple[list[tuple[Intervention, Observation]], dict[str, Any]]:
        """The spec's budget run by Ax (the peer a user would pick instead), round by round through the
        spec's lab: its (intervention, observation) pairs and notes, `notes["recommended"]` being Ax's
        own pick of the best tried parameters. Raises RuntimeError, saying how to install it, when Ax
        is missing here."""
        ...

    def emit(self, figures: Any, json_out: bool, printer: Callable[[Any, Any], None], work_dir: Path | None = None) -> None:
        """A benchmark's figures: saved as `figures.json` in `work_dir` (when given), then printed as
        JSON (`json_out`) or by `printer(figures, console)`."""
        ...


class World:
    """One kind of experiment. Subclasses set `name`, `Options`, and override what differs."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Options: ClassVar[type[WorldOptions]] = WorldOptions
    experiment_noun: ClassVar[tuple[str, str]] = ("experiment", "experiments")
    """What a person calls one experiment of this world, singular and plural (e.g. ("day", "days"))."""

    # -- the spec ---------------------------------------------------------------------------------
    def options(self, spec: CampaignSpec) -> Any:
        """`spec.world_options` validated by this world's `Options` (SpecError, one line per problem)."""
        try:
            return self.Options.model_validate(spec.world_options)
        except ValidationError as exc:
            lines = problem_lines(exc, spec.world_options, self.Options, prefix="world_options.")
            fields = ", ".join(sorted(self.Options.model_fields)) or "none"
            head = f"world {self.name!r} options are invalid (it takes: {fields})"
            raise SpecError(f"{head}:\n  " + "\n  ".join(lines), problems=lines) from None

    def series(self, spec: CampaignSpec) -> tuple[Series, ...]:
        """The time courses experiments of this world report (the spec's, for a generic world)."""
        return tuple(spec.series)

    def readouts(self, spec: CampaignSpec) -> tuple[Readout, ...]:
        """Every readout an experiment yields: the world's own and the spec's declared ones."""
        return tuple(spec.readouts)

    def readout(self, spec: CampaignSpec, name: str) -> Readout | None:
        return next((r for r in self.readouts(spec) if r.name == name), None)

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        """Every problem of the spec for this world, one line each starting with the field at fault
        (empty when it can run): its options, its lab, and every readout, series and variable the
        spec names. A world adds its own checks after these."""
        problems: list[str] = []
        try:
            self.options(spec)
        except SpecError as exc:
            problems += exc.problems
        problems += _lab_problems(spec, self.lab_options)
        try:
            readouts = {r.name for r in self.readouts(spec)}
            series = {s.name for s in self.series(spec)}
        except (SpecError, ValueError):  # the world's readouts read its options, which are wrong (said above)
            return problems
        if spec.objective.readout not in readouts:
            problems.append(
                f"objective.readout: {spec.objective.readout!r} is not a readout of world {self.name!r}; "
                f"known readouts: {sorted(readouts) or 'none (declare them under readouts:)'}"
            )
        for i, r in enumerate(spec.readouts):
            if r.series is not None and r.series not in series:
                problems.append(
                    f"readouts.{i}.series: readout {r.name!r} is computed from series {r.series!r}, which the world "
                    f"does not report; known series: {sorted(series) or 'none (declare them under series:)'}"
                )
        for i, limit in enumerate(spec.safety):
            known = series if limit.series is not None else readouts
            if limit.target not in known:
                what = "series" if limit.series is not None else "readout"
                problems.append(
                    f"safety.{i}.{what}: safety limit {limit.name!r} watches {what} {limit.target!r}, which world "
                    f"{self.name!r} does not report; known {what}: {sorted(known) or 'none'}"
                )
        return problems

    def validate_spec(self, spec: CampaignSpec) -> CampaignSpec:
        """The spec, when it can run in this world; else SpecError listing every problem, one line
        each, with its line in the spec's file when it was read from one."""
        problems = [spec.where(p) for p in self.check_spec(spec)]
        if problems:
            raise SpecError(f"spec {spec.name!r} cannot run in world {self.name!r}:\n  " + "\n  ".join(problems), problems)
        return spec

    def example_spec(self) -> CampaignSpec | None:
        """A tiny campaign of this world (2 rounds, small batches, fast experiments) for the conformance
        test that every registered world must pass; None when it cannot run on this machine."""
        return None

    def library(self, model: Any) -> Container[str] | None:
        """The names a world-decided categorical variable accepts (a screen's genes), or None."""
        return None

    # -- the lab ------------------------------------------------------------------------------------
    lab_options: ClassVar[type[BaseModel] | None] = None
    """What the world's local lab takes as `lab.options` (checked with the spec); None: nothing. A world
    whose lab runs a simulator through `lab_adapters.make_executor` sets `lab_adapters.ExecutorOptions`."""

    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        """The in-process lab for this world (`lab: {adapter: local}`); kwargs such as cache_dir, workers."""
        raise SpecError(f"world {self.name!r} has no local lab; point spec.lab at a lab adapter (http, sila)")

    # -- the world model ----------------------------------------------------------------------------
    model_suffix: ClassVar[str] = ".pt"

    def model_family(self, spec: CampaignSpec) -> str:
        """`ensemble` (scalar readouts), `gp`, or `series` (time-course ensemble), as the spec's
        `world_model` says; `auto` is the scalar family whose kind the campaign's own held-out evidence
        picks at each refit (`worldmodel.ChosenScalarModel`). Why not the time-course family by default:
        with mean-path rollouts, a multi-step fine-tune and a noise-scaled log transform it now runs whole
        campaigns from a first round of 4 (it used to diverge and be filtered out), and it spends fewer
        unsafe experiments, but it finds less: measured with `bench spec` (3 seeds), oral dosing 0.93 vs
        0.98 (auto) time in window, MAPK 14.7 vs 20.0 (GP) ERK area (NF-kB 10.9 vs 10.2 is its one win),
        with 90% intervals that cover too little off the campaign's path. Name it (`world_model: series`)."""
        return spec.world_model

    def new_model(self, spec: CampaignSpec, config: Any = None) -> Any:
        """An unfitted world model of this world's family (fit it on the campaign's history)."""
        from wetloop.worldmodel import ChosenScalarModel, ScalarWorldModel, SeriesWorldModel

        family = self.model_family(spec)
        if family == "series":
            return SeriesWorldModel(spec, self.series(spec), self.readouts(spec), inputs=self.inputs)
        if family == "auto":
            return ChosenScalarModel(spec, self.readouts(spec))
        return ScalarWorldModel(spec, self.readouts(spec), kind="gp" if family == "gp" else "ensemble")

    def light_model_config(self) -> Any:
        """Settings (`new_model`'s `config`) of a small world model that fits in seconds, for benches
        that measure something else than learning (e.g. lab round trips); None: the default is light."""
        return None

    def load_model(self, path: str | Path, spec: CampaignSpec) -> Any:
        from wetloop.worldmodel import ScalarWorldModel, SeriesWorldModel

        if self.model_family(spec) == "series":
            return SeriesWorldModel.load(path, spec, self.series(spec), self.readouts(spec), inputs=self.inputs)
        return ScalarWorldModel.load(path, spec, self.readouts(spec))

    def prior_model(self, spec: CampaignSpec) -> Any:
        """A model before any result (a screen's knowledge prior), or None: the first round is then
        a space-filling design over the spec's start region."""
        return None

    def fit_data(self, history: History) -> list[tuple[Intervention, Observation]]:
        """The experiments a refit learns from (`ok` results)."""
        return [(x, o) for x, o in history if o.status == "ok"]

    def fit_summary(self, report: Any) -> str:
        """One line about a refit, for the campaign log."""
        summary = getattr(report, "summary", None)
        return summary() if callable(summary) else f"world model refit ({type(report).__name__})"

    def inputs(self, spec: CampaignSpec, interventions: Sequence[Intervention], times_min: Sequence[float]) -> Any:
        """What each intervention does over time, for the time-course model: an array (n, K, C) of C
        input channels at the K intervals between `times_min`, or None when an intervention acts
        only at the start (then its encoded values are held constant over time)."""
        return None

    # -- the world-model bench (`wetloop bench worldmodel`) ----------------------------------------
    def forecast(self, model: Any, spec: CampaignSpec, interventions: Sequence[Intervention]) -> Any:
        """What a fitted model of this world predicts for `interventions`, as samples: a
        `worldmodel.OutcomeSamples` (each readout (S, n); each series it models (S, n, T) on its time
        grid). Default: the generic families' draws, read by their `outcome`."""
        from wetloop.worldmodel import sampled_outcomes

        return sampled_outcomes(model, interventions)

    def constraints(self, spec: CampaignSpec) -> tuple[Any, ...]:
        """The world's declared constraints on what an experiment yields (`worldmodel.Bound`s): a
        prediction outside one is impossible (a negative concentration, a fraction above 1). Default:
        each series' declared `lower` / `upper` and each readout's `Readout.bounds`."""
        from wetloop.worldmodel import declared_bounds

        return declared_bounds(self.series(spec), self.readouts(spec))

    def bench_interventions(self, spec: CampaignSpec, n: int, rng: Any) -> list[Intervention] | None:
        """`n` distinct interventions that sample this world's space fairly (`rng` a numpy Generator), for
        benches that hold experiments out; None (the default): drawn uniformly in the spec's hard limits."""
        return None

    def intervention_start_min(self, spec: CampaignSpec, intervention: Intervention) -> float:
        """When the intervention begins, in minutes from a result's first sample: the samples up to then are
        the baseline state of the experiment's transition record (`wetloop export`). Default: 0, an
        intervention that acts from the start (the baseline is the state at the first sample)."""
        return 0.0

    def result_problem(self, obs: Observation) -> str | None:
        """Why an 'ok' result of this world cannot be stored beyond the generic checks (None when it can)."""
        return None

    def round_summary(self, spec: CampaignSpec, observations: Sequence[Observation], n_experiments: int) -> str | None:
        """One line about a round's stored results (of its `n_experiments`) for the campaign log, or None
        for the generic line (each result's objective)."""
        return None

    def report_figures(self, view: Any) -> list[Any]:
        """The world's own figures for the report (plotly figures), shown before the generic ones."""
        return []

    def report_tables(self, view: Any) -> list[ReportTable]:
        """The world's own tables for the report (e.g. a screen's hits), shown after its figures."""
        return []

    def objective_total(self, spec: CampaignSpec) -> str | None:
        """The name of the running total of the objective readout, for a column of the rounds tables
        (e.g. "hits", where each experiment's objective counts 0 or 1), or None where a sum of the
        objective means nothing (the default: the tables show the best so far only)."""
        return None

    def dense_optimum(self, spec: CampaignSpec, n: int = 1024) -> Any:
        """The best safe answer by brute-force simulation (`best_value`, `best_values`, `start_best_value`,
        `fraction_unsafe`, `n`), for benches; None where experiments are not cheap to simulate."""
        return None

    # -- the planner and the proposer -------------------------------------------------------------
    def make_planner(self, spec: CampaignSpec, config: Any = None) -> Any:
        from wetloop.planners import Planner

        return Planner(spec, config, series=self.series(spec), readouts=self.readouts(spec))

    def offline_proposer(self) -> Any:
        """This world's own offline proposer, or None for the generic one."""
        return None

    def hypotheses(
        self, ctx: ProposalContext, safe: list[tuple[Intervention, Observation, float]], n: int
    ) -> list[HypothesisDraft]:
        """Domain hypotheses the generic offline proposer adds to its own (read off the best results)."""
        return []

    # -- the command line ---------------------------------------------------------------------------
    def register_cli(self, bench: Any, tools: CliTools) -> None:
        """Add this world's own commands to `wetloop bench` (`bench`, a typer app), e.g. a benchmark
        against the world's reference answers. Called for every registered world each time `wetloop`
        starts, so keep it light: import the benchmark inside the command. Default: none."""


def _lab_problems(spec: CampaignSpec, local_options: type[BaseModel] | None) -> list[str]:
    """The spec's lab adapter and its options (`lab_adapters.lab_problems`), as problem lines."""
    from wetloop.lab_adapters import lab_problems

    return lab_problems(spec, local_options)
