"""`wetloop bench patient` and `wetloop bench ray`, registered by `SimglucoseWorld.register_cli` (each
benchmark loads when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wetloop.campaign import default_spec_path, load_spec

from .._base import CliTools

__all__ = ["register"]


def register(bench: typer.Typer, tools: CliTools) -> None:
    """Add `patient` and `ray` to the `wetloop bench` app."""

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

    @bench.command("ray")
    def bench_ray_cmd(
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        patients: Annotated[int, typer.Option(min=1, max=30, help="Virtual patients (spread over simglucose's 30).")] = 8,
        regimens: Annotated[int, typer.Option(min=1, max=1000, help="Random regimens per patient.")] = 8,
        hours: Annotated[float | None, typer.Option(help="Length of each day (default: the spec's).")] = None,
        workers: Annotated[int | None, typer.Option(min=1, help="CPUs of each leg (default: this machine's).")] = None,
        address: Annotated[
            str | None, typer.Option(help="A running Ray cluster for the Ray leg (default: local clusters of 1 and 2 nodes).")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of the regimens.")] = 0,
        work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's caches go.")] = None,
    ) -> None:
        """The same batch of simulated days through the local process pool and through Ray (1 and 2 nodes),
        as ratios. Needs the extra `ray`. A local cluster listens on every interface (with a token of its
        own): run it as `unshare -n sh -c 'ip link set lo up; wetloop bench ray'` to keep it on loopback."""
        try:
            from ._bench_ray import bench_ray, print_ray_bench
        except ImportError as exc:
            tools.log.print(
                f'[red]bench ray needs the optional extra "ray" ({exc.name} is missing): pip install "wetloop[ray]"[/red]'
            )
            raise typer.Exit(2) from None

        spec = load_spec(default_spec_path())
        work_dir = work_dir or tools.work_dir("bench-ray")
        figures = bench_ray(
            spec,
            work_dir,
            patients=patients,
            regimens=regimens,
            hours=hours,
            workers=workers,
            address=address,
            seed=seed,
            log=tools.log.print,
        )
        tools.emit(figures, json_out, print_ray_bench, work_dir)
