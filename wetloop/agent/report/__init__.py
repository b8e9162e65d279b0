"""The campaign report: one self-contained HTML page and a Markdown summary, read from the store.

The report only reads the append-only store; it never changes a campaign. `load_view` (`_view`)
reads a campaign once; the figure functions (`_figures`) take that view and return plotly figures,
so the web review page can draw the same pictures without going through the files; `_words` says
things in the world's units, `_html` and `_markdown` write the two files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wetloop.campaign import CampaignStore

from ._figures import band_figure, band_series, objective_figure, trajectory_figure
from ._html import LIST_LIMIT, render_html
from ._markdown import render_markdown
from ._view import SURPRISE_FRACTION, CampaignView, Outcome, load_view, rows_of, summary_rows, surprise_fraction
from ._words import RoundColumn, round_columns

__all__ = [
    "LIST_LIMIT",
    "SURPRISE_FRACTION",
    "CampaignView",
    "Outcome",
    "ReportPaths",
    "RoundColumn",
    "band_figure",
    "band_series",
    "load_view",
    "objective_figure",
    "render_html",
    "render_markdown",
    "round_columns",
    "rows_of",
    "summary_rows",
    "surprise_fraction",
    "trajectory_figure",
    "write_report",
]


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote the report."""

    html: Path
    markdown: Path


def write_report(store: CampaignStore, campaign_id: str, out_dir: Path) -> ReportPaths:
    """Write `out_dir/report.html` (self-contained: plotly.js inline, no network needed) and
    `out_dir/summary.md` for one campaign; returns their paths. Raises CampaignNotFound."""
    view = load_view(store, campaign_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(html=out_dir / "report.html", markdown=out_dir / "summary.md")
    paths.html.write_text(render_html(view), encoding="utf-8")
    paths.markdown.write_text(render_markdown(view, paths.html.resolve()), encoding="utf-8")
    return paths
