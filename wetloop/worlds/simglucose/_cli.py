"""`wetloop bench patient` and `wetloop bench ray`, registered by `SimglucoseWorld.register_cli` (each
benchmark loads when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wetloop.campaign import default_spec_path, load_spec

from .._base import CliTools

__all__ = ["register", "DAYS_SPEC"]

DAYS_SPEC = Path(__file__).with_name("specs") / "patient_days.yaml"


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(bench: typer.Typer, tools: CliTools) -> None:
    """Add `patient` and `ray` to the `wetloop bench` app."""

    @bench.command("patient")
    def bench_patient_cmd(
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
        spec_path: Annotated[
            Path, typer.Option("--spec", help="A simglucose spec (default: varying days, a regimen of 8 variables).")
        ] = DAYS_SPEC,
        patients: Annotated[
            str | None, typer.Option("--patients", help="Comma-separated simglucose patients (default: the spec's).")
        ] = None,
        seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds, one campaign per method each.")] = "0",
        held_out: Annotated[int, typer.Option("--held-out", min=1, help="Held-out days every pick is scored on.")] = 20,
        controls: Annotated[
            bool, typer.Option("--controls/--no-controls", help="Also run the no-learning and shuffled-feedback controls.")
        ] = True,
        ax: Annotated[bool, typer.Option("--ax/--no-ax", help="Also run Ax (needs the ax extra).")] = True,
        population: Annotated[
            bool,
            typer.Option(
                "--population/--no-population",
                help="With several patients, also run ours from a population prior (the other patients' campaigns).",
            ),
        ] = True,
        work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's campaigns run.")] = None,
    ) -> None:
        """Every method's regimen on held-out days: ours, its controls, random search, Ax, and the
        simulator's own controller with the patient's true parameters."""
        from ._bench import bench_patient, print_bench

        try:
            seed_list = [int(s) for s in _list(seeds)]
        except ValueError:
            raise typer.BadParameter(f"--seeds takes comma-separated integers, got {seeds!r}") from None
        spec = load_spec(spec_path)
        work_dir = work_dir or tools.work_dir("bench")
        figures = bench_patient(
            spec,
            work_dir,
            tools.create,
            ax=tools.ax if ax else None,
            patients=_list(patients) if patients else None,
            seeds=seed_list,
            held_out=held_out,
            controls=controls,
            export=tools.export if population else None,
            console=tools.log,
        )
        tools.emit(figures, json_out, print_bench, work_dir)

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
