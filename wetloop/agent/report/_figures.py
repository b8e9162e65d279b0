"""The report's figures, drawn from a `CampaignView` as plotly figures (the web review page draws
the same ones): the objective per round, and predicted bands over observed trajectories."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from wetloop.campaign import Band, CampaignSpec, Trajectory

from ._view import SURPRISE_FRACTION, CampaignView, Outcome, rows_of, world_parts
from ._words import noun_of

__all__ = [
    "TRAJECTORY_ROUNDS",
    "band_figure",
    "band_series",
    "banded_rounds",
    "objective_figure",
    "target_ranges",
    "trajectory_figure",
    "unit_of",
]

TRAJECTORY_ROUNDS = 3
"""How many of the last rounds the trajectory figure draws (by default)."""

_OBSERVED, _PREDICTED, _UNSAFE, _BAND = "#1f77b4", "#ff7f0e", "#d62728", "rgba(255,127,14,0.22)"


def _spread(rounds: Sequence[int], side: float) -> list[float]:
    """x positions that put points of the same round side by side (observed left, predicted right)."""
    total = Counter(rounds)
    seen: Counter[int] = Counter()
    xs: list[float] = []
    for r in rounds:
        xs.append(r + side * (0.08 + 0.22 * seen[r] / max(total[r] - 1, 1)))
        seen[r] += 1
    return xs


def _observed_traces(view: CampaignView) -> list[go.Scatter]:
    pts = [o for o in view.outcomes if o.objective is not None]
    xs = _spread([o.experiment.round for o in pts], -1.0)
    traces = []
    for unsafe, name, marker in (
        (False, "observed", dict(color=_OBSERVED, size=9)),
        (True, f"observed, unsafe {noun_of(view.spec)[0]}", dict(color=_UNSAFE, size=12, symbol="x")),
    ):
        keep = [i for i, o in enumerate(pts) if o.unsafe == unsafe]
        if keep:
            traces.append(
                go.Scatter(
                    x=[xs[i] for i in keep],
                    y=[pts[i].objective for i in keep],
                    mode="markers",
                    name=name,
                    marker=marker,
                    hovertext=[pts[i].experiment.intervention.describe(view.spec) for i in keep],
                )
            )
    return traces


def _predicted_trace(view: CampaignView) -> go.Scatter | None:
    picks = [(r.round, p) for r in view.rankings for p in r.selected if p.score.expected_value is not None]
    if not picks:
        return None
    return go.Scatter(
        x=_spread([rnd for rnd, _ in picks], 1.0),
        y=[p.score.expected_value for _, p in picks],
        mode="markers",
        name="predicted (selected, ±1 sd)",
        marker=dict(color=_PREDICTED, size=8, symbol="diamond"),
        error_y=dict(type="data", array=[p.score.value_std or 0.0 for _, p in picks], visible=True),
        hovertext=[p.proposal.intervention.describe(view.spec) for _, p in picks],
    )


def objective_figure(view: CampaignView) -> go.Figure:
    """Observed objective per experiment (x = round; unsafe ones as red crosses), the best (safe)
    value so far as a step line, beside each round the selected proposals' predicted expected_value
    ± value_std where a model made one, and a target objective's target value as a dashed line."""
    fig = go.Figure(_observed_traces(view))
    objective = view.spec.objective
    if objective.direction == "target" and objective.target_value is not None:
        fig.add_hline(
            y=objective.target_value,
            line=dict(color="#2ca02c", dash="dash"),
            annotation_text=f"target {objective.target_value:g}",
            annotation_position="top left",
            name=f"target {objective.target_value:g}",
        )
    rows = [r for r in rows_of(view) if r["best_objective"] is not None]
    if rows:
        fig.add_trace(
            go.Scatter(
                x=[r["round"] for r in rows],
                y=[r["best_objective"] for r in rows],
                mode="lines+markers",
                line=dict(shape="hv", color="#2ca02c"),
                name="best safe so far" if view.spec.safety else "best so far",
            )
        )
    if (predicted := _predicted_trace(view)) is not None:
        fig.add_trace(predicted)
    fig.update_layout(
        template="plotly_white",
        height=420,
        margin=dict(t=40, b=40),
        title=f"{view.spec.objective.readout} per round ({view.spec.objective.direction})",
        xaxis=dict(title="round", dtick=1),
        yaxis=dict(title=view.spec.objective.readout),
        legend=dict(orientation="h", y=-0.18),
    )
    return fig


def _banded(view: CampaignView, series: str, last_rounds: int, rounds: Collection[int] | None = None) -> list[Outcome]:
    """Experiments that have a predicted band of `series`: of `rounds`, else of the last `last_rounds` rounds with one."""
    with_band = [o for o in view.outcomes if o.band is not None and o.band.series == series]
    keep = set(rounds) if rounds is not None else sorted({o.experiment.round for o in with_band})[-last_rounds:]
    return [o for o in with_band if o.experiment.round in keep]


def _panel_title(o: Outcome, spec: CampaignSpec, threshold: float) -> str:
    title = f"R{o.experiment.round} · {o.experiment.intervention.describe(spec)}"
    if o.surprise is not None and o.surprise > threshold:
        title += f"<br><span style='color:{_UNSAFE}'><b>surprise: {o.surprise:.0%} outside band</b></span>"
    return title


def _panel(fig: go.Figure, band: Band, traj: Trajectory | None, spec: CampaignSpec, cell: tuple[int, int], first: bool) -> None:
    t = np.asarray(band.times_min) / 60.0
    add = lambda trace: fig.add_trace(trace, row=cell[0], col=cell[1])  # noqa: E731
    add(go.Scatter(x=t, y=band.lower, line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup="band"))
    add(
        go.Scatter(
            x=t,
            y=band.upper,
            fill="tonexty",
            fillcolor=_BAND,
            line=dict(width=0),
            legendgroup="band",
            name=f"predicted {band.level:.0%} interval",
            showlegend=first,
        )
    )
    add(
        go.Scatter(
            x=t,
            y=band.median,
            line=dict(color=_PREDICTED, dash="dash"),
            name="predicted median",
            legendgroup="median",
            showlegend=first,
        )
    )
    if traj is not None and band.series in traj.series:
        add(
            go.Scatter(
                x=np.asarray(traj.times_min) / 60.0,
                y=traj.series[band.series],
                line=dict(color="black"),
                name=f"observed {band.series}",
                legendgroup="observed",
                showlegend=first,
            )
        )
    for trace in _limit_lines(spec, band.series, (t[0], t[-1]), first):
        add(trace)


def _limit_lines(spec: CampaignSpec, series: str, span: tuple[float, float], first: bool) -> list[go.Scatter]:
    """A dotted line at each threshold (below and/or above) of the spec's safety limits on `series`."""
    return [
        go.Scatter(
            x=list(span),
            y=[bound] * 2,
            mode="lines",
            line=dict(color=_UNSAFE, dash="dot"),
            name=f"{limit.name} ({sign} {bound:g})",
            legendgroup=limit.name,
            showlegend=first,
        )
        for limit in spec.safety
        if limit.series == series
        for sign, bound in (("<", limit.below), (">", limit.above))
        if bound is not None
    ]


def target_ranges(spec: CampaignSpec, series: str) -> list[tuple[float, float]]:
    """[low, high] of each time-in-range readout of `series` in the spec's world (shaded on its panels)."""
    found = [(r.low, r.high) for r in world_parts(spec)[1] if r.series == series and r.stat == "time_in_range"]
    return sorted({(low, high) for low, high in found if low is not None and high is not None})


def unit_of(spec: CampaignSpec, series: str) -> str:
    """The declared unit of `series` in the spec's world ("" when it declares none)."""
    return next((s.unit for s in world_parts(spec)[0] if s.name == series), "")


def band_figure(spec: CampaignSpec, panels: Sequence[tuple[str, Band, Trajectory | None]], row_height: int = 280) -> go.Figure:
    """Small multiples, one per (title, predicted band, observed trajectory or None): the band's
    interval filled and median dashed, the observation (if any) in black, the safety thresholds on the
    band's series dotted and the range of each time-in-range readout of that series shaded; the y axis
    names the series and its declared unit. The review page draws proposals with it."""
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig = make_subplots(
        nrows,
        cols,
        subplot_titles=[title for title, _, _ in panels],
        shared_yaxes=True,
        horizontal_spacing=0.03,
        vertical_spacing=90 / (row_height * nrows),
    )
    for i, (_, band, traj) in enumerate(panels):
        _panel(fig, band, traj, spec, (i // cols + 1, i % cols + 1), first=i == 0)
    series = panels[0][1].series
    for low, high in target_ranges(spec, series):
        fig.add_hrect(y0=low, y1=high, fillcolor="#2ca02c", opacity=0.1, line_width=0, row="all", col="all")
    fig.update_annotations(font_size=11)
    fig.update_xaxes(title_text="hour", row=nrows)
    unit = unit_of(spec, series)
    fig.update_yaxes(title_text=f"{series} ({unit})" if unit else series, col=1)
    fig.update_layout(
        template="plotly_white",
        height=row_height * nrows + 120,
        margin=dict(t=60, b=40),
        legend=dict(orientation="h", y=-0.08 - 0.1 / nrows),
    )
    return fig


def band_series(view: CampaignView) -> str | None:
    """The series the campaign's predicted bands show: the first of its world's series that has a
    band (any banded series when the world declares none of them), None before any band."""
    banded = {o.band.series for o in view.outcomes if o.band is not None}
    declared = [s.name for s in world_parts(view.spec)[0] if s.name in banded]
    return declared[0] if declared else min(banded, default=None)


def trajectory_figure(
    view: CampaignView,
    series: str | None = None,
    last_rounds: int = TRAJECTORY_ROUNDS,
    threshold: float = SURPRISE_FRACTION,
    rounds: Collection[int] | None = None,
) -> go.Figure:
    """`band_figure` of every experiment of `rounds` (default: the last `last_rounds`) that had a
    predicted band of `series` (default: `band_series(view)`): the observed trajectory over it.
    Panels of surprises say so in their title."""
    series = series or band_series(view)
    shown = _banded(view, series, last_rounds, rounds) if series else []
    if not shown:
        fig = go.Figure(layout=dict(template="plotly_white", height=200))
        return fig.add_annotation(text=f"no predicted {series or 'trajectory'} bands yet", showarrow=False)
    return band_figure(
        view.spec,
        [
            (_panel_title(o, view.spec, threshold), o.band, o.observation.trajectory if o.observation else None)  # type: ignore[misc]
            for o in shown
        ],
    )


def banded_rounds(view: CampaignView, series: str | None = None) -> tuple[list[int], list[int]]:
    """(every round with a predicted band of `series`, the rounds `trajectory_figure` draws by default)."""
    series = series or band_series(view)
    every = sorted({o.experiment.round for o in view.outcomes if o.band is not None and o.band.series == series})
    return every, every[-TRAJECTORY_ROUNDS:]
