"""`CellWorld`: steer myeloid cell fate with cocktails of clamped transcription factors.

The network is the 11-gene myeloid model of Krumsiek et al. (2011), as scanpy ships it
(`scanpy/sim_models/krumsiek11.txt`), read with scanpy's own parser and stepped for a whole
population at once (`_network.Network.simulate`, equal to scanpy's `GRNsim.sim_model` step for step).
An experiment treats a population of cells with a cocktail (one `set` variable: genes at `ko` or
`oe`) during a window, and reports each gene's mean expression over time (series) and the share of
cells in each fate at the end (readouts). See `CellOptions` for what a spec can set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from wetloop.campaign import Budget, CampaignSpec, Intervention, Readout, Series, SpecError, load_spec

from .._base import CliTools, World
from ._experiment import LEVELS
from ._options import FATES, CellOptions

__all__ = ["SPECS_DIR", "CellWorld"]

SPECS_DIR = Path(__file__).parent / "specs"

GENES = ("Gata2", "Gata1", "Fog1", "EKLF", "Fli1", "SCL", "Cebpa", "Pu.1", "cJun", "EgrNab", "Gfi1")
"""The model's genes, in the model file's order (a test checks this against scanpy's parser)."""


class CellWorld(World):
    name: ClassVar[str] = "cell"
    summary: ClassVar[str] = "a virtual cell: transcription-factor cocktails steer myeloid fate (Krumsiek 2011, scanpy)"
    Options: ClassVar[type[CellOptions]] = CellOptions

    # -- the spec -------------------------------------------------------------------------------
    def series(self, spec: CampaignSpec) -> tuple[Series, ...]:
        """Each gene's mean expression over the population, over model time (scanpy's units)."""
        return tuple(
            spec.series_named(g) or Series(name=g, lower=None, description=f"mean expression of {g} over the cells")
            for g in GENES
        )

    def readouts(self, spec: CampaignSpec) -> tuple[Readout, ...]:
        options = self._options_or_default(spec)
        own = [
            Readout(name="target_fraction", description=f"share of cells that end as {options.target} (the target fate)"),
            *(Readout(name=f"fraction_{f}", description=f"share of cells that end as {f}") for f in FATES),
        ]
        names = {r.name for r in own}
        return (*own, *(r for r in spec.readouts if r.name not in names))

    def _options_or_default(self, spec: CampaignSpec) -> CellOptions:
        try:
            return self.options(spec)
        except SpecError:  # check_spec reports why
            return CellOptions()

    def constraints(self, spec: CampaignSpec) -> tuple[Any, ...]:
        """The declared bounds, and every fate's share of cells in [0, 1]."""
        from wetloop.worldmodel import Bound

        names = ("target_fraction", *(f"fraction_{f}" for f in FATES))
        declared = tuple(b for b in super().constraints(spec) if b.target not in names)
        return tuple(Bound("readout", name, 0.0, 1.0) for name in names) + declared

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        problems = super().check_spec(spec)
        if len(spec.interventions) != 1 or spec.interventions[0].kind != "set":
            return [
                *problems,
                "world 'cell' takes exactly one intervention variable, of kind set (the cocktail): "
                f"items among {list(GENES)}, levels among {list(LEVELS)}",
            ]
        var = spec.interventions[0]
        unknown = sorted(set(var.items or ()) - set(GENES))
        if unknown:
            problems.append(f"variable {var.name!r}: items {unknown} are not genes of the network; its genes: {list(GENES)}")
        bad = sorted(set(var.levels) - set(LEVELS))
        if bad:
            problems.append(
                f"variable {var.name!r}: levels {bad} are not clamp levels; use {list(LEVELS)} (knock out, overexpress)"
            )
        return problems

    def example_spec(self) -> CampaignSpec | None:
        """The erythroid reprogramming campaign, 2 rounds of 2, 50 cells."""
        spec = load_spec(SPECS_DIR / "reprogram.yaml")
        return spec.with_overrides(budget=Budget(rounds=2, batch=2), world_options={**spec.world_options, "cells": 50})

    # -- the lab --------------------------------------------------------------------------------
    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        from ._lab import CellLab

        self.validate_spec(spec)
        return CellLab(spec, self.options(spec), cache_dir=kwargs.get("cache_dir"))

    def dense_optimum(self, spec: CampaignSpec, n: int = 1024) -> Any:
        """Every cocktail simulated once (`n` is ignored: the space is enumerated)."""
        from ._oracle import oracle

        self.validate_spec(spec)
        return oracle(spec, self.options(spec))

    # -- the world model --------------------------------------------------------------------------
    def new_model(self, spec: CampaignSpec, config: Any = None) -> Any:
        """`world_model: series`: the learned dynamics of each cell's time course (`CellDynamicsModel`);
        the other families are the generic scalar ones over the cocktail's encoding."""
        if spec.world_model != "series":
            return super().new_model(spec, config)
        from ._dynamics import CellDynamicsModel, CellModelConfig

        return CellDynamicsModel(spec, self.options(spec), config if isinstance(config, CellModelConfig) else None)

    def load_model(self, path: str | Path, spec: CampaignSpec) -> Any:
        if spec.world_model != "series":
            return super().load_model(path, spec)
        from ._dynamics import CellDynamicsModel

        return CellDynamicsModel.load(path, spec, self.options(spec))

    def forecast(self, model: Any, spec: CampaignSpec, interventions: Sequence[Intervention]) -> Any:
        """The generic draws of the readouts; from the learned dynamics, each gene's mean trajectory too."""
        from ._dynamics import CellDynamicsModel

        base = super().forecast(model, spec, interventions)
        if not isinstance(model, CellDynamicsModel):
            return base
        import torch

        from wetloop.worldmodel import OutcomeSamples

        times, means = model.trajectories([model.cocktail_of(x) for x in interventions])  # (M, n, T, G)
        series = {gene: torch.from_numpy(means[..., j]).double() for j, gene in enumerate(model.net.genes)}
        return OutcomeSamples(base.readouts, series, tuple(float(t) for t in times))

    # -- the proposer ---------------------------------------------------------------------------
    def offline_proposer(self) -> Any:
        from ._proposer import CocktailProposer

        return CocktailProposer()

    # -- the command line -----------------------------------------------------------------------
    def register_cli(self, bench: Any, tools: CliTools) -> None:
        """`wetloop bench cell`: ours vs GP vs random search vs the oracle, per target fate."""
        from ._cli import register

        register(bench, tools)

    # -- the report -----------------------------------------------------------------------------
    def report_figures(self, view: Any) -> list[Any]:
        from ._report import fate_figure

        fig = fate_figure(view)
        return [fig] if fig is not None else []
