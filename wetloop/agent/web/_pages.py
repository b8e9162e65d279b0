"""What the pages show, read from the store: the proposal cards of the round awaiting review, and
the campaign pages (rounds, objective per round, hypotheses with evidence, predicted vs observed
with surprises flagged). Figures come from `report.py`, the code that draws the report.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import plotly.graph_objects as go

from wetloop.campaign import CampaignSpec, CampaignStore, Hypothesis, RankedProposal, Ranking

from .._edits import edit_text
from ..report import SURPRISE_FRACTION, CampaignView, band_figure, load_view, objective_figure, rows_of, trajectory_figure
from ._desk import Draft, DraftDecision

__all__ = ["Card", "Pages", "figure_html"]

T = TypeVar("T")
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def figure_html(fig: go.Figure) -> str:
    """A figure as an HTML fragment; the page loads plotly.js once, from this app (no CDN)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)


@dataclass(frozen=True)
class Card:
    """One proposal of the round awaiting review, with everything the reviewer needs beside it."""

    index: int
    proposal: dict[str, Any]
    ranked: RankedProposal | None
    hypothesis: Hypothesis | None
    figure: str | None
    decision: DraftDecision | None
    error: str | None
    typed: dict[str, str]
    reasons: dict[str, str]
    edit_figure: str | None = None
    """The predicted band of the edit (when the decision is an edit and the model draws one)."""

    @property
    def edit(self) -> RankedProposal | None:
        """The edit's own prediction and score, when the decision is an edit the model re-predicted."""
        return self.decision.predicted if self.decision is not None else None

    def field(self, name: str) -> str:
        """What the edit field of variable `name` shows: what was typed, else the proposed value."""
        return self.typed.get(name, edit_text(self.proposal["values"][name]))


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    """Run a Pages method under its lock: requests run in threads, and they share one connection."""

    @functools.wraps(method)
    def wrapper(self: Pages, *args: Any) -> T:
        with self._lock:
            return method(self, *args)

    return wrapper


class Pages:
    """Builds template contexts for one campaign from a read connection of its own to the store;
    proposal figures are drawn once per round."""

    def __init__(self, store_path: Path, campaign_id: str, spec: CampaignSpec) -> None:
        self.store, self.campaign_id, self.spec = CampaignStore(store_path), campaign_id, spec
        self._figures: dict[tuple[int, str, str], str | None] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def ranking(self, round: int) -> Ranking | None:
        """The ranking the graph's review node reads: the last one stored for the round."""
        recs = self.store.records(self.campaign_id, "ranking", round=round)
        return Ranking.model_validate(recs[-1].payload) if recs else None

    @_locked
    def review(self, payload: dict[str, Any], draft: Draft) -> dict[str, Any]:
        """Context of the review page: cards, the safety removals, how many are decided."""
        ranking = self.ranking(payload["round"])
        ranked = {r.proposal.intervention.key(): r for r in ranking.ranked} if ranking else {}
        hyps = self.store.hypotheses(self.campaign_id)
        cards = [self._card(payload["round"], p, ranked.get(p["proposal_key"]), hyps, draft) for p in payload["selected"]]
        return {
            "payload": payload,
            "ranking": ranking,
            "cards": cards,
            "removed": ranking.removed if ranking else (),
            "decided": len(draft.decisions),
            "draft": draft,
        }

    def _card(
        self, round: int, p: dict[str, Any], ranked: RankedProposal | None, hyps: dict[str, Hypothesis], draft: Draft
    ) -> Card:
        i, decision = p["index"], draft.decisions.get(p["index"])
        edit = decision.predicted if decision is not None else None
        return Card(
            i,
            p,
            ranked,
            hyps.get(p["hypothesis_id"] or ""),
            self._figure(round, p["proposal_key"], ranked),
            decision,
            draft.errors.get(i),
            draft.typed.get(i, {}),
            draft.reasons.get(i, {}),
            self._figure(round, edit.proposal.intervention.key(), edit, "edit: ") if edit is not None else None,
        )

    def _figure(self, round: int, key: str, ranked: RankedProposal | None, label: str = "") -> str | None:
        if (round, key, label) not in self._figures:
            band = ranked.band if ranked is not None else None
            title = f"{label}predicted {band.series}: median and {band.level:.0%} interval of the ensemble" if band else ""
            fig = band_figure(self.spec, [(title, band, None)], row_height=220) if band else None
            if fig is not None:  # one small panel: room for the axis title above the legend
                fig.update_layout(legend=dict(y=-0.32), margin=dict(t=40, b=60))
            self._figures[(round, key, label)] = figure_html(fig) if fig is not None else None
        return self._figures[(round, key, label)]

    @_locked
    def rows(self) -> list[dict[str, Any]]:
        """The per-round summary rows of the report (`report.rows_of`)."""
        return rows_of(load_view(self.store, self.campaign_id))

    @_locked
    def campaign(self) -> dict[str, Any]:
        """Context of the campaign page: rounds, objective per round, hypotheses, predicted vs observed."""
        view = load_view(self.store, self.campaign_id)
        figures = {}
        if any(o.objective is not None for o in view.outcomes):
            figures["objective"] = figure_html(objective_figure(view))
        if any(o.band is not None for o in view.outcomes):
            figures["trajectory"] = figure_html(trajectory_figure(view))
        return {
            "view": view,
            "rows": rows_of(view),
            "figures": figures,
            "best": view.best(),
            "outcomes": view.outcomes,
            **_surprises(view),
        }

    @_locked
    def round(self, n: int) -> dict[str, Any]:
        """Context of one round's page: its ranking, decisions, experiments and their trajectories."""
        view = load_view(self.store, self.campaign_id)
        ranking = self.ranking(n)
        outcomes = [o for o in view.outcomes if o.experiment.round == n]
        figure = figure_html(trajectory_figure(view, rounds=[n])) if any(o.band is not None for o in outcomes) else None
        names = (
            {r.proposal.intervention.key(): r.proposal.intervention.describe(self.spec) for r in ranking.ranked}
            if ranking
            else {}
        )
        return {
            "view": view,
            "n": n,
            "ranking": ranking,
            "outcomes": outcomes,
            "figure": figure,
            "names": names,
            "decisions": [d for r, d in view.decisions if r == n],
            **_surprises(view),
        }


def _surprises(view: CampaignView) -> dict[str, Any]:
    """Keys of experiments whose observations fell far outside the predicted interval."""
    keys = {o.experiment.key for o in view.outcomes if o.surprise is not None and o.surprise > SURPRISE_FRACTION}
    return {"surprises": keys, "threshold": SURPRISE_FRACTION}
