"""The campaign report: one self-contained HTML page and a Markdown summary, read from the store.

The report only reads the append-only store; it never changes a campaign. `load_view` reads a
campaign once and joins each experiment with its observation and with the prediction it was
selected on; the figure functions take that view and return plotly figures, so the web review
page can draw the same pictures without going through the files.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from wetloop.campaign import (
    Band,
    CampaignSpec,
    CampaignStore,
    Decision,
    Experiment,
    Hypothesis,
    Observation,
    RankedProposal,
    Ranking,
    Readout,
    Series,
    SpecError,
    Trajectory,
    computed_readouts,
    get_world,
    observed_safe,
    observed_unsafe,
)

__all__ = [
    "SURPRISE_FRACTION",
    "CampaignView",
    "band_figure",
    "band_series",
    "Outcome",
    "ReportPaths",
    "load_view",
    "objective_figure",
    "render_html",
    "render_markdown",
    "rows_of",
    "summary_rows",
    "surprise_fraction",
    "trajectory_figure",
    "write_report",
]

SURPRISE_FRACTION = 0.3
"""An experiment is a surprise when more than this fraction of its observed readings fall outside
the predicted interval: a calibrated 90% band leaves about a tenth outside, so a third is a model
that did not understand this regimen."""

_TEMPLATES = Path(__file__).parent / "templates"
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_OBSERVED, _PREDICTED, _UNSAFE, _BAND = "#1f77b4", "#ff7f0e", "#d62728", "rgba(255,127,14,0.22)"


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote the report."""

    html: Path
    markdown: Path


def surprise_fraction(band: Band, trajectory: Trajectory) -> float | None:
    """Fraction of the observed readings of `band.series` outside the predicted interval.

    The band is interpolated onto the observation times; readings outside the band's time span
    are not judged. None when the series was not observed or no reading falls in the span.
    """
    if band.series not in trajectory.series or not band.times_min:
        return None
    t, y = np.asarray(trajectory.times_min), np.asarray(trajectory.series[band.series])
    bt = np.asarray(band.times_min)
    span = (t >= bt[0]) & (t <= bt[-1])
    if not span.any():
        return None
    lower, upper = np.interp(t[span], bt, band.lower), np.interp(t[span], bt, band.upper)
    return float(((y[span] < lower) | (y[span] > upper)).mean())


@dataclass(frozen=True)
class Outcome:
    """One experiment joined with what the lab observed and what the planner predicted for it.

    `objective` is the observed objective readout (None until an ok observation arrives);
    `unsafe` is True when the day crossed any safety threshold; `predicted` is the selected ranked
    proposal of its round with the same intervention (None without a ranking, or after an edit).
    """

    experiment: Experiment
    observation: Observation | None
    objective: float | None
    unsafe: bool
    predicted: RankedProposal | None

    @property
    def band(self) -> Band | None:
        return self.predicted.band if self.predicted is not None else None

    @property
    def surprise(self) -> float | None:
        """Fraction of observed readings outside the predicted band (None without both)."""
        traj = self.observation.trajectory if self.observation is not None else None
        return surprise_fraction(self.band, traj) if self.band and traj else None


@dataclass(frozen=True)
class CampaignView:
    """One campaign read from the store once: everything the report draws on."""

    campaign_id: str
    spec: CampaignSpec
    outcomes: tuple[Outcome, ...]
    rankings: tuple[Ranking, ...]
    decisions: tuple[tuple[int | None, Decision], ...]
    hypotheses: tuple[Hypothesis, ...]
    models: tuple[dict[str, Any], ...]
    invalid: tuple[dict[str, Any], ...]

    @property
    def rounds(self) -> list[int]:
        """Every round that has a ranking or an experiment, in order."""
        return sorted({o.experiment.round for o in self.outcomes} | {r.round for r in self.rankings})

    def best(self, up_to_round: int | None = None) -> Outcome | None:
        """The best observed objective among days shown safe (`campaign.observed_safe`, as the planner and
        the proposers count them: an unsafe regimen, or one whose safety is unknown, answers no question)."""
        safe = [
            o
            for o in self.outcomes
            if o.objective is not None
            and o.observation is not None
            and observed_safe(self.spec, o.observation)
            and (up_to_round is None or o.experiment.round <= up_to_round)
        ]
        return max(safe, key=lambda o: self.spec.objective.utility(o.objective), default=None)

    def spent(self, round: int | None = None, up_to_round: int | None = None) -> float:
        """What the experiments run so far cost, in `spec.cost.unit`: `spec.cost_of(values)` summed over
        every experiment whose result came back (ok or failed: a failed run is paid for too), of one
        `round`, or of the rounds up to `up_to_round`, or of the whole campaign."""
        return sum(
            self.spec.cost_of(o.experiment.intervention.values)
            for o in self.outcomes
            if o.observation is not None
            and (round is None or o.experiment.round == round)
            and (up_to_round is None or o.experiment.round <= up_to_round)
        )


def _world_parts(spec: CampaignSpec) -> tuple[tuple[Series, ...], tuple[Readout, ...]]:
    """The series and readouts of the spec's world (the spec's own when its world cannot be loaded)."""
    try:
        world = get_world(spec.world)
        return tuple(world.series(spec)), tuple(world.readouts(spec))
    except SpecError:
        return tuple(spec.series), tuple(spec.readouts)


def _objective(spec: CampaignSpec, obs: Observation | None) -> float | None:
    if obs is None or obs.status != "ok":
        return None
    value = obs.readouts.get(spec.objective.readout)
    if value is None and obs.trajectory is not None:
        # an older lab may report only the trajectory; the world's readout definitions fill in
        value = computed_readouts(spec, obs, _world_parts(spec)[1]).get(spec.objective.readout)
    return value


def _unsafe(spec: CampaignSpec, obs: Observation | None) -> bool:
    return obs is not None and observed_unsafe(spec, obs)


def _selected_by_round(rankings: Iterable[Ranking]) -> dict[int, dict[str, RankedProposal]]:
    """Selected proposals by round and intervention key; a later ranking of a round wins."""
    chosen: dict[int, dict[str, RankedProposal]] = {}
    for ranking in rankings:
        chosen[ranking.round] = {r.proposal.intervention.key(): r for r in ranking.selected}
    return chosen


def load_view(store: CampaignStore, campaign_id: str) -> CampaignView:
    """Read one campaign from the store and join experiments with observations and predictions."""
    spec, rankings = store.spec(campaign_id), tuple(store.rankings(campaign_id))
    observations, chosen = store.observations(campaign_id), _selected_by_round(rankings)
    outcomes = tuple(
        Outcome(
            e,
            (obs := observations.get(e.key)),
            _objective(spec, obs),
            _unsafe(spec, obs),
            chosen.get(e.round, {}).get(e.intervention.key()),
        )
        for e in store.experiments(campaign_id)
    )
    decisions = tuple((r.round, Decision.model_validate(r.payload)) for r in store.records(campaign_id, "decision"))
    return CampaignView(
        campaign_id,
        spec,
        outcomes,
        rankings,
        decisions,
        tuple(store.hypotheses(campaign_id).values()),
        tuple(r.payload for r in store.records(campaign_id, "model")),
        tuple(r.payload for r in store.records(campaign_id, "invalid_proposal")),
    )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def rows_of(view: CampaignView) -> list[dict[str, Any]]:
    """`summary_rows` of an already loaded view (see there)."""
    rows = []
    for rnd in view.rounds:
        this = [o for o in view.outcomes if o.experiment.round == rnd]
        observed = [o for o in this if o.objective is not None]
        predicted = [o.predicted.score.expected_value for o in observed if o.predicted is not None]
        best = view.best(up_to_round=rnd)
        rows.append(
            {
                "round": rnd,
                "experiments": len(this),
                "observed": len(observed),
                "best_objective": best.objective if best else None,
                "best_intervention": best.experiment.intervention.describe(view.spec) if best else None,
                "unsafe_days": sum(o.unsafe for o in this),
                "predicted_mean": _mean([p for p in predicted if p is not None]),
                "observed_mean": _mean([o.objective for o in observed]),  # type: ignore[misc]
                "spent": view.spent(round=rnd),
                "spent_total": view.spent(up_to_round=rnd),
            }
        )
    return rows


def summary_rows(store: CampaignStore, campaign_id: str) -> list[dict[str, Any]]:
    """One row per round, plain data for a terminal table.

    Keys: round, experiments (approved in the round), observed (with an objective), best_objective
    and best_intervention (best safe day up to and including the round, None before one),
    unsafe_days (in the round), predicted_mean (mean expected_value of the round's observed
    experiments that had a model prediction), observed_mean (mean observed objective), spent (the
    cost of the round's experiments with a result, in `spec.cost.unit`) and spent_total (up to the round).
    """
    return rows_of(load_view(store, campaign_id))


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
        (True, "observed, unsafe day", dict(color=_UNSAFE, size=12, symbol="x")),
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
    """Observed objective per experiment (x = round; unsafe days as red crosses), the best safe
    value so far as a step line, and beside each round the selected proposals' predicted
    expected_value ± value_std where a model made one."""
    fig = go.Figure(_observed_traces(view))
    rows = [r for r in rows_of(view) if r["best_objective"] is not None]
    if rows:
        fig.add_trace(
            go.Scatter(
                x=[r["round"] for r in rows],
                y=[r["best_objective"] for r in rows],
                mode="lines+markers",
                line=dict(shape="hv", color="#2ca02c"),
                name="best safe so far",
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
    """Experiments that have a predicted band of `series`: of `rounds`, else of the last `last_rounds`."""
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


def _target_ranges(spec: CampaignSpec, series: str) -> list[tuple[float, float]]:
    """[low, high] of each time-in-range readout of `series` in the spec's world (shaded on its panels)."""
    found = [(r.low, r.high) for r in _world_parts(spec)[1] if r.series == series and r.stat == "time_in_range"]
    return sorted({(low, high) for low, high in found if low is not None and high is not None})


def _unit(spec: CampaignSpec, series: str) -> str:
    """The declared unit of `series` in the spec's world ("" when it declares none)."""
    return next((s.unit for s in _world_parts(spec)[0] if s.name == series), "")


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
    for low, high in _target_ranges(spec, series):
        fig.add_hrect(y0=low, y1=high, fillcolor="#2ca02c", opacity=0.1, line_width=0, row="all", col="all")
    fig.update_annotations(font_size=11)
    fig.update_xaxes(title_text="hour", row=nrows)
    unit = _unit(spec, series)
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
    declared = [s.name for s in _world_parts(view.spec)[0] if s.name in banded]
    return declared[0] if declared else min(banded, default=None)


def trajectory_figure(
    view: CampaignView,
    series: str | None = None,
    last_rounds: int = 3,
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


def _num(value: Any, digits: int = 3) -> str:
    """Numbers for tables: 3 significant figures, a dash for a missing model field."""
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _short(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _figures_html(view: CampaignView, threshold: float) -> dict[str, str]:
    """Each figure as an HTML fragment (the template marks them safe); only the first carries
    plotly.js, inline, so the page opens with no network and holds the library once."""
    figs: dict[str, go.Figure] = {}
    for i, fig in enumerate(get_world(view.spec.world).report_figures(view)):
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


def render_html(view: CampaignView, threshold: float = SURPRISE_FRACTION) -> str:
    """The whole report page as one string (template `templates/report.html`, autoescaped)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=_num, short=_short)
    surprises = [o for o in view.outcomes if o.surprise is not None and o.surprise > threshold]
    return env.get_template("report.html").render(
        view=view,
        spec=view.spec,
        rows=rows_of(view),
        best=view.best(),
        figures=_figures_html(view, threshold),
        ranking=view.rankings[-1] if view.rankings else None,
        surprises=surprises,
        threshold=threshold,
        names=_proposal_names(view),
        trajectory_caption=_trajectory_caption(view),
        spent=_spent_text(view),
    )


def _trajectory_caption(view: CampaignView) -> str:
    """What the trajectory panels show, in words: the series, its target ranges with their unit."""
    series = band_series(view) or next((s.name for s in _world_parts(view.spec)[0]), None)
    text = f"Each panel: the observed {series or 'series'} (black) over the predicted interval (filled) and median (dashed)"
    unit = f" {_unit(view.spec, series)}".rstrip() if series else ""
    ranges = _target_ranges(view.spec, series) if series else []
    shaded = "; ".join(f"the target range {low:g}–{high:g}{unit} is shaded" for low, high in ranges)
    return text + (f"; {shaded} and each safety threshold dotted." if shaded else "; each safety threshold is dotted.")


def _md_cell(value: Any) -> str:
    return _num(value).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_md_cell(r[k]) for k in head) + " |" for r in rows]


def _spent_text(view: CampaignView) -> str:
    """The campaign's spending in words, e.g. `12 patient-day on 12 experiments with a result`."""
    run = sum(o.observation is not None for o in view.outcomes)
    return f"{view.spent():g} {view.spec.cost.unit} on {run} experiment{'s' * (run != 1)} with a result"


def _md_best(view: CampaignView) -> list[str]:
    observed = [o for o in view.outcomes if o.objective is not None]
    unsafe = sum(o.unsafe for o in observed)
    tally = f"Unsafe days in the campaign: {unsafe} of {len(observed)} observed."
    if (best := view.best()) is None:
        return ["No experiment has been observed yet." if not observed else f"No safe day yet. {tally}"]
    same = [o for o in observed if o.experiment.intervention.key() == best.experiment.intervention.key()]
    bad = sum(o.unsafe for o in same)
    safety = "no day with it was unsafe" if not bad else f"{bad} of its {len(same)} days were unsafe"
    return [
        f"**Best intervention:** {best.experiment.intervention.describe(view.spec)} — observed "
        f"{view.spec.objective.readout} = {_num(best.objective)} in round {best.experiment.round}; {safety}.",
        "",
        tally,
    ]


def render_markdown(view: CampaignView, html_path: Path) -> str:
    """The short summary: question, best intervention, what was spent, per-round table, hypotheses, report path."""
    lines = [f"# Campaign {view.campaign_id}", "", f"**Question:** {view.spec.question}", "", *_md_best(view)]
    lines += ["", f"**Spent:** {_spent_text(view)} (budget: {view.spec.budget.experiments} experiments)."]
    rows = rows_of(view)
    lines += ["", "## Rounds", "", *(_md_table(rows) if rows else ["No rounds yet."])]
    hyps = [
        f"- **{h.status}** ({len(h.evidence_for)} for, {len(h.evidence_against)} against): {h.statement}" for h in view.hypotheses
    ]
    lines += ["", "## Hypotheses", "", *(hyps or ["None stated yet."])]
    return "\n".join([*lines, "", f"Full report: {html_path}", ""])


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
