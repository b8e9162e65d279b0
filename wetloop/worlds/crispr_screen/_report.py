"""The screen part of the report: cumulative hits per round against random and oracle, and the hits found.

Random and oracle are computed after the fact from the screen itself (its library size and number
of hits), the same baselines `wetloop bench screen` prints; the campaign never saw them. When the
screen's files cannot be read here, the figure shows the campaign's own hits only and says why.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from wetloop.campaign import CampaignSpec, ReportTable, WetloopError

from ._hgnc import load_screen

CampaignView = Any  # the agent's report view (a world never imports the agent): spec, rounds, outcomes

__all__ = ["hits_table", "screen_counts", "screen_rows", "screen_figure"]


def screen_counts(spec: CampaignSpec) -> tuple[int, int] | None:
    """(genes in the library, hits) of the campaign's screen, or None when it cannot be read here."""
    try:
        screen = load_screen(str(spec.world_options["screen"]), spec.world_options.get("data_dir"))
    except (WetloopError, KeyError, OSError):
        return None
    return len(screen.genes), len(screen.hits)


def screen_rows(view: CampaignView) -> list[dict[str, Any]]:
    """Per round: genes tested so far, hits found so far, and what random and an oracle would have found."""
    counts = screen_counts(view.spec)
    rows, tested, found = [], 0, 0
    for rnd in view.rounds:
        done = [
            o for o in view.outcomes if o.experiment.round == rnd and o.observation is not None and o.observation.status == "ok"
        ]
        tested += len(done)
        found += sum(1 for o in done if o.observation.readouts.get("hit", 0.0) > 0)
        row: dict[str, Any] = {"round": rnd, "tested": tested, "hits": found, "random": None, "oracle": None}
        if counts:
            library, hits = counts
            row.update(random=round(tested * hits / library, 1), oracle=min(tested, hits), hit_ratio=round(found / hits, 3))
        rows.append(row)
    return rows


def screen_figure(view: CampaignView) -> go.Figure:
    rows = screen_rows(view)
    x = [r["round"] for r in rows]
    fig = go.Figure(go.Scatter(x=x, y=[r["hits"] for r in rows], mode="lines+markers", name="this campaign"))
    if rows and rows[0]["random"] is not None:
        fig.add_trace(
            go.Scatter(x=x, y=[r["random"] for r in rows], mode="lines", line=dict(dash="dot"), name="random (expected)")
        )
        fig.add_trace(go.Scatter(x=x, y=[r["oracle"] for r in rows], mode="lines", line=dict(dash="dash"), name="oracle"))
        title = "cumulative hits per round"
    else:
        title = "cumulative hits per round (the screen's files are not readable here: no random or oracle line)"
    fig.update_layout(
        title=title, xaxis=dict(title="round", dtick=1), yaxis_title="hits found", height=360, margin=dict(l=50, r=20, t=50, b=40)
    )
    return fig


def hits_table(view: CampaignView) -> ReportTable:
    """Every hit the campaign found: gene (the intervention), the round it was found in and the screen's
    score of it, by round and then by the score's size."""
    hits = [
        o
        for o in view.outcomes
        if o.observation is not None and o.observation.status == "ok" and o.observation.readouts.get("hit", 0.0) > 0
    ]
    score = lambda o: o.observation.readouts.get("score")  # noqa: E731
    gene = view.spec.interventions[0].name
    hits.sort(key=lambda o: (o.experiment.round, -abs(score(o) or 0.0)))
    tested = sum(1 for o in view.outcomes if o.observation is not None and o.observation.status == "ok")
    return ReportTable(
        title="Hits found",
        columns=("gene", "round found", "score"),
        rows=tuple((str(o.experiment.intervention.values[gene]), o.experiment.round, score(o)) for o in hits),
        note=f"{len(hits)} hits among {tested} genes tested; score: the screen's published score of the gene.",
    )
