"""The crispr_screen world: a published genome-wide CRISPR screen played back as a lab.

An experiment knocks out one gene of the screen's library; the lab reveals whether it is a hit. The
world brings its own world model (gene knowledge prior + learned ensemble), planner (batch Thompson
sampling) and offline proposer (gene-set hypotheses).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any

from wetloop.campaign import Budget, CampaignSpec, Intervention, Observation, Readout, ReportTable, SpecError, load_spec

from .._base import CliTools, World, WorldOptions

__all__ = ["ScreenWorld", "ScreenOptions"]

SPECS = Path(__file__).resolve().parents[2] / "campaign" / "specs"


class ScreenOptions(WorldOptions):
    """`world_options` of a screen spec."""

    screen: str
    data_dir: str | None = None
    shuffle_feedback: bool = False
    exclude_core_essential: bool = True


class ScreenWorld(World):
    name = "crispr_screen"
    summary = "a genome-wide CRISPR screen played back from published data: one gene knockout per experiment"
    Options = ScreenOptions
    model_suffix = ".npz"

    def readouts(self, spec: CampaignSpec) -> tuple[Readout, ...]:
        own = (
            Readout(name="hit", binary=True, description="1 when the knockout is a hit of the screen"),
            Readout(name="score", description="the screen's published score of the gene"),
        )
        return own + tuple(spec.readouts)

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        """The generic checks, then the screen's file (missing, empty, a gene-pair screen) where it is here."""
        problems = super().check_spec(spec)
        if problems:
            return problems
        from ._hgnc import screen_problems

        options = self.options(spec)
        return [f"world_options.screen: {p}" for p in screen_problems(options.screen, options.data_dir)]

    def example_spec(self) -> CampaignSpec | None:
        """The IFNG screen, 2 rounds of 8 genes; None when its data cannot be had here."""
        import os

        from ._datasets import data_cache_dir

        root = os.environ.get("WETLOOP_DATA_DIR")
        where = Path(root) / "screens" if root else data_cache_dir()
        if not where.is_dir() or not any(where.rglob("ground_truth_IFNG.csv")):
            return None  # never downloads from a test
        return load_spec(SPECS / "screen_ifng.yaml").with_overrides(budget=Budget(rounds=2, batch=8))

    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        from ._lab import ScreenLab

        return ScreenLab(spec, **kwargs)

    def new_model(self, spec: CampaignSpec, config: Any = None) -> Any:
        from ._model import ScreenWorldModel

        return ScreenWorldModel(spec)

    def load_model(self, path: str | Path, spec: CampaignSpec) -> Any:
        from ._model import ScreenWorldModel

        return ScreenWorldModel.load(path, spec)

    def prior_model(self, spec: CampaignSpec) -> Any:
        from ._model import ScreenWorldModel

        return ScreenWorldModel(spec)

    def forecast(self, model: Any, spec: CampaignSpec, interventions: Sequence[Intervention]) -> Any:
        """Draws of each knockout's hit readout: 16 Bernoulli draws of every member's P(hit), seeded, and the
        members' mean P(hit) as its exact mean (the model predicts P(hit) only, not the score)."""
        import torch

        from wetloop.worldmodel import OutcomeSamples

        index = model.encode(interventions)[:, 0].long()
        if (index < 0).any():
            unknown = [x.values[model.variable] for x, i in zip(interventions, index.tolist()) if i < 0]
            raise ValueError(f"genes {unknown[:5]} are not in the library of screen {spec.world_options.get('screen')!r}")
        probs = model.probs[:, index].double()  # (M, n)
        draws = torch.bernoulli(probs.repeat(16, 1), generator=torch.Generator().manual_seed(spec.seed))  # (16 M, n)
        return OutcomeSamples({"hit": draws}, means={"hit": probs.mean(0)})

    def bench_interventions(self, spec: CampaignSpec, n: int, rng: Any) -> list[Intervention] | None:
        """`n` distinct genes of the library drawn at random among those a campaign may choose (core-essential
        genes left out unless the spec keeps them)."""
        from ._model import ScreenWorldModel

        model = ScreenWorldModel(spec)
        genes = [g for g, keep in zip(model.genes, model.selectable) if keep]
        if n > len(genes):
            raise SpecError(f"the screen has {len(genes)} genes a campaign may choose; ask for at most that many experiments")
        return [Intervention(values={model.variable: str(g)}) for g in rng.choice(genes, size=n, replace=False)]

    def fit_summary(self, report: Any) -> str:
        evidence = {"rank": f"rank evidence z = {report.evidence:+.1f}", "likelihood": f"evidence {report.evidence:+.1f} nats"}
        return (
            f"screen model refit on {report.n_tested} genes ({report.n_hits} hits) in {report.seconds:.1f} s; "
            f"weight of the learned members against the prior {report.learned_weight:.2f}"
            + (f" ({evidence[report.gate]})" if report.gate in evidence else "")
        )

    def library(self, model: Any) -> Container[str] | None:
        return None if model is None else model.gene_index

    def make_planner(self, spec: CampaignSpec, config: Any = None) -> Any:
        """The screen planner with its own settings (`ScreenPlannerConfig`, env `WETLOOP_SCREENPLANNER_*`):
        none of the generic planner's weights (`config`, a PlannerConfig) applies to it."""
        from ._planner import ScreenPlanner

        return ScreenPlanner(spec)

    def offline_proposer(self) -> Any:
        from ._proposer import GeneProposer

        return GeneProposer()

    def round_summary(self, spec: CampaignSpec, observations: Sequence[Observation], n_experiments: int) -> str | None:
        readout = spec.objective.readout
        ok = [o for o in observations if o.status == "ok"]
        hits = sum(1 for o in ok if o.readouts.get(readout, 0.0) > 0)
        return f"{hits} of {len(ok)} genes ({n_experiments - len(ok)} without a result)"

    def register_cli(self, bench: Any, tools: CliTools) -> None:
        """`wetloop bench screen`: our campaign vs random, essential-first and oracle on published screens."""
        from ._cli import register

        register(bench, tools)

    def report_figures(self, view: Any) -> list[Any]:
        from ._report import screen_figure

        return [screen_figure(view)] if view.rounds else []

    def report_tables(self, view: Any) -> list[ReportTable]:
        from ._report import hits_table

        return [hits_table(view)] if view.rounds else []

    def objective_total(self, spec: CampaignSpec) -> str | None:
        """Hits found so far, where the objective is the hit readout (1 for a hit, else 0)."""
        return "hits" if spec.objective.readout == "hit" else None
