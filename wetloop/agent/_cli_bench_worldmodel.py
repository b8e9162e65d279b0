"""`wetloop bench worldmodel`: registered on the `bench` group by `register_worldmodel_bench`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from wetloop.campaign import CampaignSpec, SpecError, get_world, load_spec, world_names

__all__ = ["register_worldmodel_bench"]

FAMILIES = get_args(CampaignSpec.model_fields["world_model"].annotation)
QUICK = (8, 6)
"""`--quick`: experiments seen and held out, unless --train / --test say otherwise."""


def register_worldmodel_bench(bench: typer.Typer, emit: Callable[..., None], runs_root: Callable[[], Path], log: Any) -> None:
    """Add `wetloop bench worldmodel` to `bench`; `emit(figures, json_out, printer, work_dir)` saves and prints."""

    @bench.command("worldmodel")
    def worldmodel_cmd(
        world: Annotated[
            list[str] | None,
            typer.Option("--world", help="A registered world (repeatable). Default: every world with an example spec here."),
        ] = None,
        spec_file: Annotated[
            Path | None, typer.Option("--spec", help="Bench a campaign spec of any world instead of a world's example spec.")
        ] = None,
        model: Annotated[
            list[str] | None,
            typer.Option(
                "--model",
                help=f"A generic model family to bench, one of {', '.join(FAMILIES)} (repeatable): one column each. "
                "Default: the spec's world_model. A world with its own model family has no other.",
            ),
        ] = None,
        train: Annotated[int | None, typer.Option(min=2, help="Experiments the models learn from (default 32).")] = None,
        test: Annotated[int | None, typer.Option(min=2, help="Held-out experiments, none seen in training (default 16).")] = None,
        quick: Annotated[bool, typer.Option("--quick", help=f"A small run: {QUICK[0]} seen, {QUICK[1]} held out.")] = False,
        seed: Annotated[int | None, typer.Option(help="Seed of the draw and the split (default: the spec's).")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the figures and the lab's cache go.")] = None,
    ) -> None:
        """Each world's model on held-out experiments (realism, bounds, horizon error, unseen interventions,
        differences, calibration, planning regret) beside persistence, the training mean and an additive model."""
        from .bench_worldmodel import bench_worldmodel, print_worldmodel_bench

        unknown = [m for m in model or [] if m not in FAMILIES]
        if unknown:
            raise typer.BadParameter(f"{unknown} are not model families; pick among {list(FAMILIES)}", param_hint="--model")
        specs, skipped = _specs(world or [], spec_file)
        if seed is not None:
            specs = [s.with_overrides(seed=seed) for s in specs]
        n_train = train if train is not None else (QUICK[0] if quick else 32)
        n_test = test if test is not None else (QUICK[1] if quick else 16)
        work_dir = work_dir or runs_root() / f"bench-worldmodel-{time.strftime('%Y%m%d-%H%M%S')}"
        for name, why in skipped.items():
            log.print(f"bench worldmodel: world {name} left out: {why}", soft_wrap=True)
        figures = {
            "bench": "worldmodel",
            "worlds": [
                bench_worldmodel(s, model or [], n_train, n_test, work_dir / "lab-cache" / s.world, log=log.print) for s in specs
            ],
            "left_out": skipped,
        }
        emit(figures, json_out, print_worldmodel_bench, work_dir)


def _specs(worlds: list[str], spec_file: Path | None) -> tuple[list[CampaignSpec], dict[str, str]]:
    """The specs to bench, and the worlds left out with why (all worlds: those that cannot run here)."""
    if spec_file is not None:
        if worlds:
            raise typer.BadParameter("give --spec or --world, not both (a spec names its world)", param_hint="--spec")
        return [load_spec(spec_file)], {}
    specs, skipped = [], {}
    for name in worlds or world_names():
        try:
            spec = get_world(name).example_spec()
        except SpecError as exc:
            if worlds:
                raise
            skipped[name] = str(exc)
            continue
        if spec is None:
            if worlds:
                raise SpecError(
                    f"world {name!r} has no example spec on this machine (its data or packages); bench a spec of it with --spec"
                )
            skipped[name] = "no example spec on this machine (its data or packages are missing)"
            continue
        specs.append(spec)
    return specs, skipped
