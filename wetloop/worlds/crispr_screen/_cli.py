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
        screen: Annotated[
            list[str] | None,
            typer.Option(
                "--screen",
                help="Screen name (repeatable), e.g. IFNG. Default: every ground_truth_<name>.csv in --data-dir, "
                "else in $WETLOOP_DATA_DIR, else the registered screens.",
            ),
        ] = None,
        data_dir: Annotated[
            str | None,
            typer.Option("--data-dir", help="Directory with ground_truth_<screen>.csv (default: the registered screens)."),
        ] = None,
        rounds: Annotated[int, typer.Option(min=1, help="Rounds per campaign.")] = 5,
        batch: Annotated[
            list[str] | None,
            typer.Option(
                "--batch",
                help="Genes per round: N for every screen, or SCREEN=N for one (repeatable; SCREEN=N wins). "
                "Default: 128, or a 32nd of the library where that is smaller (Scharenberg22, 1,053 genes: 32).",
            ),
        ] = None,
        seeds: Annotated[int, typer.Option(min=1, help="Seeds (campaigns) per screen; the same seeds for every method.")] = 10,
        no_controls: Annotated[
            bool,
            typer.Option(
                "--no-controls",
                help="Skip the two control campaigns (ours without learning, ours with shuffled feedback) and the "
                "learning gain and shuffle drop they give (the run takes about a third as long).",
            ),
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
        """Per screen, in one run with the same seeds: our screen campaign, its controls (no learning, shuffled
        feedback), random, random non-essential, essential-first and oracle; the learning gain (ours / no
        learning) and shuffle drop (1 - shuffled / ours) of the non-essential hit ratio after the last round;
        and their means over screens, each screen against the others."""
        from ._bench import bench_screens, default_screens, parse_batches, print_screen_bench
        from ._hgnc import screen_problems

        names = list(dict.fromkeys(screen or default_screens(data_dir)))
        if not names:
            raise typer.BadParameter(
                f"no ground_truth_<name>.csv in {data_dir} (or its screens/ folder)", param_hint="--data-dir"
            )
        try:
            default, per_screen = parse_batches(batch or [], names)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--batch") from None
        problems = [p for name in names for p in screen_problems(name, data_dir)]
        if problems:
            raise typer.BadParameter("\n".join(problems), param_hint="--screen")
        result = bench_screens(
            names,
            data_dir,
            rounds,
            default,
            seeds,
            batches=per_screen,
            controls=not no_controls,
            log=tools.log.print,
            exclude_essential=not keep_essentials,
        )
        tools.emit(result, json_out, print_screen_bench)
