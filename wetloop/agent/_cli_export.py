"""`wetloop export`: registered on the main CLI by `register_export_command`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["register_export_command"]

out = Console()


def register_export_command(app: typer.Typer, open_run: Callable[[Path | None], Any]) -> None:
    """Add `wetloop export` to `app`; `open_run(run_dir)` opens a campaign (the newest without a folder)."""

    @app.command("export")
    def export_cmd(
        run_dir: Annotated[Path | None, typer.Argument(help="Campaign run directory (default: the newest under runs/).")] = None,
        fmt: Annotated[
            list[str] | None,
            typer.Option(
                "--format",
                "-f",
                help="jsonl (no extra needed), parquet or h5ad (AnnData); repeatable. Default: jsonl.",
            ),
        ] = None,
        out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write (default: RUN/export).")] = None,
        schema: Annotated[
            bool, typer.Option("--schema", help="Print the records' JSON Schema and exit (no campaign needed).")
        ] = False,
    ) -> None:
        """Export a campaign's experiments as transition records (baseline + intervention -> follow-up, with
        the prediction, the hypotheses, the approval and the lab), its quarantined results apart, and the schema."""
        from .export import export_campaign, transition_schema

        if schema:
            out.print_json(json.dumps(transition_schema()))
            return
        with open_run(run_dir) as c:
            target = out_dir or c.run_dir / "export"
            paths = export_campaign(c.store, c.campaign_id, target, fmt or ["jsonl"])
        for name, path in paths.transitions.items():
            out.print(f"{name}: {path} ({paths.n_transitions} transitions)", soft_wrap=True)
        out.print(f"quarantined results: {paths.quarantine} ({paths.n_quarantined})", soft_wrap=True)
        out.print(f"schema: {paths.schema}", soft_wrap=True)
