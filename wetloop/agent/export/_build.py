"""A campaign's transition records, read from its store through the report's view (`load_view`)."""

from __future__ import annotations

import importlib.metadata
import math
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

from wetloop.campaign import (
    CampaignSpec,
    CampaignStore,
    Decision,
    Experiment,
    Hypothesis,
    Observation,
    Ranking,
    computed_readouts,
)
from wetloop.campaign._transitions import (
    ApprovalRecord,
    HypothesisRecord,
    LabRecord,
    PredictionRecord,
    QuarantineRecord,
    StateRecord,
    TransitionRecord,
)

from ..report._view import CampaignView, Outcome, load_view, world_of, world_parts

__all__ = ["campaign_records", "quarantine_records", "wetloop_version"]


def wetloop_version() -> str:
    try:
        return importlib.metadata.version("wetloop")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _when(created_at: float | None) -> datetime | None:
    return None if created_at is None else datetime.fromtimestamp(created_at, tz=UTC)


def campaign_records(store: CampaignStore, campaign_id: str) -> list[TransitionRecord]:
    """Every experiment of the campaign as a transition record, in the order they were approved."""
    view = load_view(store, campaign_id)
    times = {kind: {r.key: r.created_at for r in store.records(campaign_id, kind)} for kind in ("submission", "observation")}
    approved_at = {r.key: r.created_at for r in store.records(campaign_id, "experiment")}
    surprises = {
        r.payload["experiment_key"]: str(r.payload.get("text", ""))
        for r in store.records(campaign_id, "event")
        if r.payload.get("type") == "surprise" and "experiment_key" in r.payload
    }
    version = wetloop_version()
    return [
        _record(
            view,
            o,
            surprises,
            version,
            approved_at=_when(approved_at.get(o.experiment.key)) or datetime.now(UTC),
            submitted_at=_when(times["submission"].get(o.experiment.key)),
            observed_at=_when(times["observation"].get(o.experiment.key)),
        )
        for o in view.outcomes
    ]


def quarantine_records(store: CampaignStore, campaign_id: str) -> list[QuarantineRecord]:
    """Every quarantined result of the campaign, with the raw payload the lab sent."""
    spec = store.spec(campaign_id)
    experiments = {e.key: e for e in store.experiments(campaign_id)}
    out = []
    for r in store.records(campaign_id, "quarantine"):
        key = str(r.payload["experiment_key"])
        exp = experiments.get(key)
        out.append(
            QuarantineRecord(
                campaign_id=campaign_id,
                world=spec.world,
                round=r.round,
                experiment_key=key,
                intervention=dict(exp.intervention.values) if exp is not None else None,
                reason=str(r.payload.get("reason") or ""),
                raw=r.payload.get("raw"),
                quarantined_at=datetime.fromtimestamp(r.created_at, tz=UTC),
            )
        )
    return out


def _record(view: CampaignView, o: Outcome, surprises: dict[str, str], version: str, **times: Any) -> TransitionRecord:
    spec, exp, obs = view.spec, o.experiment, o.observation
    start = _start_min(spec, exp)
    baseline, follow_up, dt = _states(spec, obs, start)
    key = exp.key
    return TransitionRecord(
        campaign_id=view.campaign_id,
        spec_name=spec.name,
        spec_fingerprint=spec.fingerprint(),
        world=spec.world,
        world_options=dict(spec.world_options),
        round=exp.round,
        experiment_key=key,
        intervention=dict(exp.intervention.values),
        intervention_units={v.name: v.unit for v in spec.interventions if v.unit},
        context=dict(exp.context),
        status=obs.status if obs is not None else "pending",
        message=obs.message if obs is not None else "",
        t_min=start,
        dt_min=dt,
        baseline=baseline,
        follow_up=follow_up,
        readouts=_readouts(spec, obs),
        objective=spec.objective.readout,
        objective_value=o.objective,
        unsafe=o.unsafe,
        prediction=_prediction(view, o),
        surprise=key in surprises,
        surprise_note=surprises.get(key),
        band_outside_fraction=o.surprise,
        hypotheses=tuple(_hypothesis(h) for h in view.hypotheses if h.id in exp.hypothesis_ids),
        approval=_approval(view, exp),
        lab=LabRecord(
            name=obs.lab if obs is not None else "",
            adapter=spec.lab.adapter,
            simulator=_simulator(obs),
            details=dict(obs.raw) if obs is not None and obs.status == "ok" else {},
        ),
        wetloop_version=version,
        **times,
    )


def _start_min(spec: CampaignSpec, exp: Experiment) -> float:
    world = world_of(spec)
    return float(world.intervention_start_min(spec, exp.intervention)) if world is not None else 0.0


def _states(
    spec: CampaignSpec, obs: Observation | None, start: float
) -> tuple[StateRecord | None, StateRecord | None, float | None]:
    """The baseline (samples at times <= start), the follow-up (the whole trajectory) and the span after start."""
    traj = obs.trajectory if obs is not None and obs.status == "ok" else None
    if traj is None or not traj.times_min:
        return None, None, None
    first = [i for i, t in enumerate(traj.times_min) if t <= start]
    baseline = StateRecord(
        times_min=tuple(traj.times_min[i] for i in first),
        series={name: tuple(values[i] for i in first) for name, values in traj.series.items()},
        units=dict(traj.units),
    )
    follow_up = StateRecord(times_min=traj.times_min, series=dict(traj.series), units=dict(traj.units))
    return (baseline if first else None), follow_up, float(traj.times_min[-1] - start)


def _readouts(spec: CampaignSpec, obs: Observation | None) -> dict[str, float]:
    """The lab's readouts, and those the world computes from the trajectory where the lab gave none."""
    if obs is None or obs.status != "ok":
        return {}
    return {**computed_readouts(spec, obs, world_parts(spec)[1]), **obs.readouts}


def _simulator(obs: Observation | None) -> str | None:
    value = obs.raw.get("simulator") if obs is not None else None
    return str(value) if value is not None else None


def _prediction(view: CampaignView, o: Outcome) -> PredictionRecord | None:
    ranking = _ranking_of(view.rankings, o.experiment.round)
    if o.predicted is None or ranking is None:
        return None
    score = o.predicted.score
    lower, upper = _interval(view, score.expected_value, score.value_std, 0.9)
    return PredictionRecord(
        model_version=ranking.model_version,
        readout=view.spec.objective.readout,
        mean=score.expected_value,
        std=score.value_std,
        lower=lower,
        upper=upper,
        p_unsafe=score.p_unsafe,
        expected_improvement=score.expected_improvement,
        info_gain=score.info_gain,
        acquisition=score.acquisition,
        rank=o.predicted.rank,
        band=o.predicted.band,
    )


def _ranking_of(rankings: tuple[Ranking, ...], rnd: int) -> Ranking | None:
    """The round's ranking (a later one of the same round wins, as in the view)."""
    found = [r for r in rankings if r.round == rnd]
    return found[-1] if found else None


def _interval(view: CampaignView, mean: float | None, std: float | None, level: float) -> tuple[float | None, float | None]:
    if mean is None or std is None or not (math.isfinite(mean) and math.isfinite(std)):
        return None, None
    z = NormalDist().inv_cdf(0.5 + level / 2)
    lower, upper = mean - z * std, mean + z * std
    series, readouts = world_parts(view.spec)
    readout = next((r for r in readouts if r.name == view.spec.objective.readout), None)
    if readout is not None:
        lo, hi = readout.bounds(next((s for s in series if s.name == readout.series), None))
        lower, upper = (max(lower, lo) if lo is not None else lower), (min(upper, hi) if hi is not None else upper)
    return lower, upper


def _hypothesis(h: Hypothesis) -> HypothesisRecord:
    return HypothesisRecord(
        id=h.id,
        statement=h.statement,
        source=h.source,
        round=h.round,
        status=h.status,
        evidence_for=h.evidence_for,
        evidence_against=h.evidence_against,
    )


def _approval(view: CampaignView, exp: Experiment) -> ApprovalRecord:
    """The review decision that approved the experiment: an approval of its intervention, or an edit to it."""
    key = exp.intervention.key()
    decision: Decision | None = None
    for rnd, d in view.decisions:
        if rnd == exp.round and d.action != "reject":
            made = d.edited.key() if d.action == "edit" and d.edited is not None else d.proposal_key
            if made == key:
                decision = d
    proposed = None
    if decision is not None and decision.action == "edit":
        ranking = _ranking_of(view.rankings, exp.round)
        original = (
            next((r for r in ranking.ranked if r.proposal.intervention.key() == decision.proposal_key), None) if ranking else None
        )
        proposed = dict(original.proposal.intervention.values) if original is not None else None
    return ApprovalRecord(
        by=exp.approved_by,
        note=exp.approval_note,
        action=decision.action if decision is not None else None,
        reason=decision.reason if decision is not None else "",
        proposed=proposed,
    )
