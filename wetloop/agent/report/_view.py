"""The campaign as the report reads it: `load_view` reads the append-only store once and joins each
experiment with its observation and with the prediction it was selected on; `rows_of` makes the
per-round rows that the report, the review page and the terminal tables show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wetloop.campaign import (
    Band,
    CampaignSpec,
    CampaignStore,
    Decision,
    EarlyStop,
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
    "Outcome",
    "load_view",
    "rows_of",
    "summary_rows",
    "surprise_fraction",
    "world_of",
    "world_parts",
]

SURPRISE_FRACTION = 0.3
"""An experiment is a surprise when more than this fraction of its observed readings fall outside
the predicted interval: a calibrated 90% band leaves about a tenth outside, so a third is a model
that did not understand this regimen."""


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
    `unsafe` is True when the experiment crossed any safety threshold; `predicted` is the selected ranked
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
    early_stop: EarlyStop | None = None  # where the campaign ended before its budget (`at_ceiling`)

    @property
    def total_label(self) -> str | None:
        """The name of the objective's running total where the world says one means something
        (`World.objective_total`, e.g. "hits"), else None."""
        world = world_of(self.spec)
        return world.objective_total(self.spec) if world is not None else None

    def total(self, up_to_round: int | None = None) -> float:
        """The objective summed over every observed experiment (of the rounds up to `up_to_round`)."""
        return sum(
            o.objective
            for o in self.outcomes
            if o.objective is not None and (up_to_round is None or o.experiment.round <= up_to_round)
        )

    @property
    def rounds(self) -> list[int]:
        """Every round that has a ranking or an experiment, in order."""
        return sorted({o.experiment.round for o in self.outcomes} | {r.round for r in self.rankings})

    def best(self, up_to_round: int | None = None) -> Outcome | None:
        """The best observed objective among experiments shown safe (`campaign.observed_safe`, as the planner and
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


def world_of(spec: CampaignSpec) -> Any:
    """The spec's world (`campaign.get_world`), or None when it cannot be loaded here (a made-up name)."""
    try:
        return get_world(spec.world)
    except SpecError:
        return None


def world_parts(spec: CampaignSpec) -> tuple[tuple[Series, ...], tuple[Readout, ...]]:
    """The series and readouts of the spec's world (the spec's own when its world cannot be loaded)."""
    world = world_of(spec)
    if world is None:
        return tuple(spec.series), tuple(spec.readouts)
    return tuple(world.series(spec)), tuple(world.readouts(spec))


def _objective(spec: CampaignSpec, obs: Observation | None) -> float | None:
    if obs is None or obs.status != "ok":
        return None
    value = obs.readouts.get(spec.objective.readout)
    if value is None and obs.trajectory is not None:
        # an older lab may report only the trajectory; the world's readout definitions fill in
        value = computed_readouts(spec, obs, world_parts(spec)[1]).get(spec.objective.readout)
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
        store.early_stop(campaign_id),
    )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def rows_of(view: CampaignView) -> list[dict[str, Any]]:
    """`summary_rows` of an already loaded view (see there)."""
    rows, total = [], view.total_label is not None
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
                "total": view.total(up_to_round=rnd) if total else None,
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
    and best_intervention (best safe experiment up to and including the round, None before one), total
    (the objective summed up to the round, where the world names such a total, else None),
    unsafe_days (unsafe experiments in the round, whatever the world calls them), predicted_mean (mean expected_value of the round's observed
    experiments that had a model prediction), observed_mean (mean observed objective), spent (the
    cost of the round's experiments with a result, in `spec.cost.unit`) and spent_total (up to the round).
    """
    return rows_of(load_view(store, campaign_id))
