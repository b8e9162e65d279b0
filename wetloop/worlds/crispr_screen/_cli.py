"""`wetloop bench screen`, registered by `ScreenWorld.register_cli` (the benchmark loads when it runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from .._base import CliTools

__all__ = ["register"]


def register(bench: typer.Typer, tools: CliTools) -> None:
    """Add `screen` to the `wetloop bench` app."""

    @bench.command("screen")
    def bench_screen_cmd(
        screen: Annotated[list[str], typer.Option("--screen", help="Screen name (repeatable), e.g. IFNG.")] = ["IFNG"],  # noqa: B006
        data_dir: Annotated[
            str | None,
            typer.Option("--data-dir", help="Directory with ground_truth_<screen>.csv (default: the registered screens)."),
        ] = None,
        rounds: Annotated[int, typer.Option(help="Rounds per campaign.")] = 5,
        batch: Annotated[int, typer.Option(help="Genes per round.")] = 128,
        seeds: Annotated[int, typer.Option(help="Seeds (campaigns) per screen.")] = 10,
        shuffle_feedback: Annotated[
            bool, typer.Option("--shuffle-feedback", help="Control: the lab permutes its answers among the genes tested.")
        ] = False,
        keep_essentials: Annotated[
            bool,
            typer.Option(
                "--keep-essentials",
                help="Ablation: our campaign may test core-essential genes (exclude_core_essential: false).",
            ),
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    ) -> None:
        """Cumulative hit ratio of our screen campaign vs random, essential-first and oracle, per round and seed."""
        from ._bench import bench_screen, print_screen_bench

        figures = [
            bench_screen(
                s, data_dir, rounds, batch, seeds, shuffle_feedback, log=tools.log.print, exclude_essential=not keep_essentials
            )
            for s in screen
        ]
        tools.emit(figures, json_out, print_screen_bench)
