"""`wetloop bench cell`, registered by `CellWorld.register_cli` (the benchmark loads when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wetloop.campaign import load_spec

from .._base import CliTools

__all__ = ["register"]


def register(bench: typer.Typer, tools: CliTools) -> None:
    """Add `cell` to the `wetloop bench` app."""

    @bench.command("cell")
    def bench_cell_cmd(
        spec_file: Annotated[
            Path | None, typer.Argument(help="A spec of world cell (default: the shipped reprogram.yaml).")
        ] = None,
        seeds: Annotated[int, typer.Option(min=1, help="Seeds per method and target.")] = 20,
        targets: Annotated[str, typer.Option(help="Target fates, comma-separated (default: the spec's and megakaryocyte).")] = "",
        methods: Annotated[
            str,
            typer.Option(
                help="Methods, comma-separated, of ours, ours_no_learning, ours_shuffled (its controls), ours_gp (the GP "
                "baseline on the same encoding), random."
            ),
        ] = "ours,ours_no_learning,ours_shuffled,ours_gp,random",
        oracle_cells: Annotated[
            int | None, typer.Option(min=10, help="Cells per cocktail in the oracle (default: the spec's).")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's campaigns run.")] = None,
    ) -> None:
        """Our campaign vs GP vs random search vs the oracle (every cocktail simulated): found, first success, cost."""
        from wetloop.campaign import get_world

        from ._bench import METHODS, bench_cell, print_cell_bench
        from ._options import FATES
        from ._world import SPECS_DIR

        spec = load_spec(spec_file or SPECS_DIR / "reprogram.yaml")
        world = get_world("cell")
        world.validate_spec(spec)
        chosen = [t.strip() for t in targets.split(",") if t.strip()] or list(
            dict.fromkeys([world.options(spec).target, "megakaryocyte"])
        )
        bad = [t for t in chosen if t not in FATES[:-1]]
        if bad:
            raise typer.BadParameter(f"unknown target fate(s) {bad}; choose among {list(FATES[:-1])}", param_hint="--targets")
        picked = tuple(m.strip() for m in methods.split(",") if m.strip())
        if not picked or set(picked) - set(METHODS):
            raise typer.BadParameter(f"methods must be among {', '.join(METHODS)}; got {methods!r}", param_hint="--methods")
        work_dir = work_dir or tools.work_dir("bench-cell")
        figures = bench_cell(
            spec,
            seeds,
            chosen,
            work_dir,
            tools.create,
            lambda s: world.make_lab(s),
            log=tools.log.print,
            methods=picked,
            oracle_cells=oracle_cells,
        )
        tools.emit(figures, json_out, print_cell_bench, work_dir)

    @bench.command("cell-model")
    def bench_cell_model_cmd(
        spec_file: Annotated[
            Path | None, typer.Argument(help="A spec of world cell (default: the shipped reprogram.yaml).")
        ] = None,
        train: Annotated[str, typer.Option(help="Training-set sizes, comma-separated.")] = "24,96",
        test: Annotated[int, typer.Option(min=1, help="Held-out cocktails per repeat.")] = 200,
        repeats: Annotated[int, typer.Option(min=1, help="Random train/test splits.")] = 2,
        cells: Annotated[int | None, typer.Option(min=10, help="Cells per simulated cocktail (default: the spec's).")] = None,
        models: Annotated[
            str,
            typer.Option(
                help="Models, comma-separated, of dynamics (the shipped learned dynamics), flow, additive, mean, gp, "
                "ensemble, parts."
            ),
        ] = "dynamics,flow,additive,mean,gp,ensemble,parts",
        flow_members: Annotated[int, typer.Option(min=1, help="Flow-matching ensemble members.")] = 4,
        flow_steps: Annotated[int, typer.Option(min=1, help="Training steps per flow-matching member.")] = 1000,
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    ) -> None:
        """World models on held-out cocktails: every fate's share and each gene's mean trajectory (the learned
        dynamics, flow matching, additive, mean), the target's share alone (generic GP and ensemble, parts)."""
        from wetloop.campaign import get_world

        from ._flow import FlowConfig
        from ._model_eval import MODELS, check_sizes, compare_models, print_model_comparison
        from ._world import SPECS_DIR

        spec = load_spec(spec_file or SPECS_DIR / "reprogram.yaml")
        get_world("cell").validate_spec(spec)
        if cells is not None:
            spec = spec.with_overrides(world_options={**spec.world_options, "cells": cells})
        try:
            sizes = [int(t) for t in train.split(",") if t.strip()]
        except ValueError:
            raise typer.BadParameter(f"give whole numbers separated by commas, got {train!r}", param_hint="--train") from None
        if not sizes or min(sizes) < 2:
            raise typer.BadParameter("each training size must be at least 2", param_hint="--train")
        picked = tuple(m.strip() for m in models.split(",") if m.strip())
        if not picked or set(picked) - set(MODELS):
            raise typer.BadParameter(f"models must be among {', '.join(MODELS)}; got {models!r}", param_hint="--models")
        try:
            check_sizes(spec, sizes, test)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--train / --test") from None
        flow = FlowConfig(members=flow_members, steps=flow_steps)
        tools.emit(compare_models(spec, sizes, test, repeats, picked, flow=flow), json_out, print_model_comparison)
