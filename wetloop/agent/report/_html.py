"""The report page: one self-contained HTML file (template `templates/report.html`, autoescaped).

Long lists stay short: a list longer than `LIST_LIMIT` shows its first (or best) rows and a
sentence about the whole, and the whole list waits folded in a `<details>` element."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go

from ._figures import band_series, banded_rounds, objective_figure, target_ranges, trajectory_figure, unit_of
from ._view import SURPRISE_FRACTION, CampaignView, Outcome, rows_of, world_of, world_parts
from ._words import (
    best_lines,
    count_by,
    lab_text,
    noun_of,
    num,
    objective_text,
    plural,
    round_columns,
    short,
    spent_text,
    status_of,
)

__all__ = ["LIST_LIMIT", "render_html"]

LIST_LIMIT = 25
"""Rows a list of the report shows before folding the rest away."""

_TEMPLATES = Path(__file__).parent.parent / "templates"
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _figures_html(view: CampaignView, threshold: float) -> dict[str, str]:
    """Each figure as an HTML fragment (the template marks them safe); only the first carries
    plotly.js, inline, so the page opens with no network and holds the library once."""
    figs: dict[str, go.Figure] = {}
    world = world_of(view.spec)
    for i, fig in enumerate(world.report_figures(view) if world is not None else []):
        figs[f"world{i}"] = fig
    if any(o.objective is not None for o in view.outcomes):
        figs["objective"] = objective_figure(view)
    if (series := band_series(view)) is not None:
        figs["trajectory"] = trajectory_figure(view, series, threshold=threshold)
    return {
        name: fig.to_html(full_html=False, include_plotlyjs=i == 0, config=_PLOT_CONFIG)
        for i, (name, fig) in enumerate(figs.items())
    }


def _proposal_names(view: CampaignView) -> dict[str, str]:
    """Intervention descriptions by key, so decisions show a regimen rather than a hash."""
    props = [r.proposal for k in view.rankings for r in k.ranked] + [s.proposal for k in view.rankings for s in k.removed]
    return {p.intervention.key(): p.intervention.describe(view.spec) for p in props}


def _best_first(view: CampaignView) -> list[Outcome]:
    """The experiments with an observed objective, best (by the objective's utility) first, at most LIST_LIMIT."""
    observed = [o for o in view.outcomes if o.objective is not None]
    observed.sort(key=lambda o: -view.spec.objective.utility(o.objective))
    return observed[:LIST_LIMIT]


def _experiments_text(view: CampaignView) -> str:
    """A sentence about every experiment, and which ones the table lists when they are many."""
    n = len(view.outcomes)
    statuses = ", ".join(f"{k} {s}" for s, k in count_by(status_of(o) for o in view.outcomes))
    text = f"{plural(n, view.spec)} approved ({statuses})."
    if n > LIST_LIMIT:
        text += (
            f" Listed: the {min(LIST_LIMIT, len(_best_first(view)))} with the best observed {view.spec.objective.readout}; "
            f"all {n}, in the order they were approved, are in the folded list below."
        )
    return text


def _trajectory_rounds_text(view: CampaignView) -> str:
    """Which rounds the trajectory panels show, plainly (the last few rounds with a predicted band)."""
    every, shown = banded_rounds(view)
    if not shown:
        return ""
    if len(shown) == len(every):
        return f"Shown: every round with a predicted band (round{'s' * (len(shown) > 1)} {_span(shown)})."
    return (
        f"Shown: the last {len(shown)} rounds with a predicted band only (rounds {_span(shown)}); the "
        f"{len(every) - len(shown)} earlier rounds with bands (rounds {_span(every[: -len(shown)])}) are not drawn."
    )


def _span(rounds: list[int]) -> str:
    return ", ".join(map(str, rounds)) if len(rounds) <= 3 else f"{rounds[0]}–{rounds[-1]}"


def _trajectory_caption(view: CampaignView) -> str:
    """What the trajectory panels show, in words: the series, its target ranges with their unit."""
    series = band_series(view) or next((s.name for s in world_parts(view.spec)[0]), None)
    text = f"Each panel: the observed {series or 'series'} (black) over the predicted interval (filled) and median (dashed)"
    unit = f" {unit_of(view.spec, series)}".rstrip() if series else ""
    ranges = target_ranges(view.spec, series) if series else []
    shaded = "; ".join(f"the target range {low:g}–{high:g}{unit} is shaded" for low, high in ranges)
    return text + (f"; {shaded} and each safety threshold dotted." if shaded else "; each safety threshold is dotted.")


def _reason_kind(reason: Any) -> str:
    """What kind of problem an invalid proposal had: its reason up to the first colon."""
    return str(reason or "no reason given").split(":", 1)[0].strip()


def render_html(view: CampaignView, threshold: float = SURPRISE_FRACTION) -> str:
    """The whole report page as one string (template `templates/report.html`, autoescaped)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=num, short=short)
    world = world_of(view.spec)
    surprises = [o for o in view.outcomes if o.surprise is not None and o.surprise > threshold]
    return env.get_template("report.html").render(
        view=view,
        spec=view.spec,
        noun=noun_of(view.spec),
        limit=LIST_LIMIT,
        rows=rows_of(view),
        columns=round_columns(view.spec),
        best=view.best(),
        best_lines=best_lines(view, bold=("", "")),
        objective=objective_text(view.spec),
        lab=lab_text(view),
        figures=_figures_html(view, threshold),
        world_tables=world.report_tables(view) if world is not None else [],
        best_outcomes=_best_first(view),
        experiments_text=_experiments_text(view),
        ranking=view.rankings[-1] if view.rankings else None,
        surprises=surprises,
        threshold=threshold,
        names=_proposal_names(view),
        trajectory_caption=_trajectory_caption(view),
        trajectory_rounds=_trajectory_rounds_text(view),
        decision_counts=count_by(f"{d.action} by {d.by}" for _, d in view.decisions),
        invalid_counts=count_by(_reason_kind(p.get("reason")) for p in view.invalid),
        spent=spent_text(view),
    )
