"""`wetloop bench patient`, registered by `SimglucoseWorld.register_cli` (the benchmark loads when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wetloop.campaign import default_spec_path, load_spec

from .._base import CliTools

__all__ = ["register"]


def register(bench: typer.Typer, tools: CliTools) -> None:
    """Add `patient` to the `wetloop bench` app."""

    @bench.command("patient")
    def bench_patient_cmd(
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        seed: Annotated[int, typer.Option(help="Seed of both campaigns.")] = 0,
        patient: Annotated[str | None, typer.Option(help="simglucose patient (default: the spec's).")] = None,
        work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's campaigns run.")] = None,
    ) -> None:
        """Our campaign vs random search vs the simulator's own controller; calibration; rollout speed."""
        from ._bench import bench_patient, print_bench

        spec = load_spec(default_spec_path()).with_overrides(seed=seed)
        if patient is not None:
            spec = spec.with_overrides(world_options={**spec.world_options, "patient": patient})
        work_dir = work_dir or tools.work_dir("bench")
        tools.emit(bench_patient(spec, work_dir, tools.create, console=tools.log), json_out, print_bench, work_dir)
