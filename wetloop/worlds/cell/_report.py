"""The cell part of the report: each experiment's fate fractions, a stacked bar per cocktail."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ._options import FATES, CellOptions

__all__ = ["fate_figure"]

COLOURS = {
    "erythrocyte": "#c0392b",
    "megakaryocyte": "#8e44ad",
    "monocyte": "#2980b9",
    "neutrophil": "#27ae60",
    "undecided": "#95a5a6",
}


def fate_figure(view: Any) -> go.Figure | None:
    """Fate fractions of every experiment with a result, in the order run (None when there is none)."""
    done = [o for o in view.outcomes if o.observation is not None and o.observation.status == "ok"]
    if not done:
        return None
    var = view.spec.interventions[0]
    labels = [f"r{o.experiment.round}: {var.describe(o.experiment.intervention.values.get(var.name) or {})}" for o in done]
    fig = go.Figure()
    for fate in FATES:
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[o.observation.readouts.get(f"fraction_{fate}", 0.0) for o in done],
                name=fate,
                marker_color=COLOURS[fate],
            )
        )
    options = CellOptions.model_validate(view.spec.world_options)
    success, target = options.success, options.target
    fig.add_hline(y=success, line_dash="dash", annotation_text=f"{target} goal {success:g}")
    fig.update_layout(
        barmode="stack",
        title=f"fate fractions per cocktail (target: {target})",
        yaxis_title="share of cells",
        height=420,
        margin=dict(l=50, r=20, t=50, b=140),
    )
    return fig
