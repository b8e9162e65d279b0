"""The review gate's logic: what a reviewer is shown, and how decisions become experiments.

Decisions are checked again here even when the CLI checked them: an edit outside the hard limits,
or one the world model predicts to be unsafe, is recorded as refused and never submitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wetloop.campaign import CampaignSpec, Decision, Experiment, Intervention, RankedProposal, Ranking

from ._edits import edit_problems

if TYPE_CHECKING:
    from .graph import LoopContext

__all__ = ["review_payload", "autonomous_decisions", "apply_decisions", "predicted_p_unsafe", "edit_problem", "AUTONOMOUS"]

AUTONOMOUS = "policy:autonomous"


def review_payload(spec: CampaignSpec, campaign_id: str, ranking: Ranking) -> dict[str, Any]:
    """What the interrupt hands to a reviewer: the selected batch with scores, and the removals."""
    return {
        "campaign_id": campaign_id,
        "round": ranking.round,
        "selected": [
            {
                "index": i,
                "proposal_key": r.proposal.intervention.key(),
                "values": r.proposal.intervention.values,
                "describe": r.proposal.intervention.describe(spec),
                "hypothesis_id": r.proposal.hypothesis_id,
                "rationale": r.proposal.rationale,
                "score": r.score.model_dump(mode="json"),
            }
            for i, r in enumerate(ranking.selected, start=1)
        ],
        "removed": [{"describe": s.proposal.intervention.describe(spec), "reason": s.reason} for s in ranking.removed],
    }


def autonomous_decisions(ranking: Ranking) -> list[Decision]:
    return [
        Decision(
            proposal_key=r.proposal.intervention.key(),
            action="approve",
            by=AUTONOMOUS,
            reason="selected by the planner; approved by the autonomous policy",
        )
        for r in ranking.selected
    ]


def predicted_p_unsafe(world: Any, xs: Sequence[Intervention]) -> list[dict[str, float]]:
    """P(unsafe) per safety limit for each intervention, from the world model's rollouts."""
    samples = world.botorch_model().posterior(world.encode(list(xs)).unsqueeze(-2)).values[..., 0, :]
    probs = world.outcome.p_unsafe(samples)
    return [{name: float(p[i]) for name, p in probs.items()} for i in range(len(xs))]


def edit_problem(spec: CampaignSpec, x: Intervention, world: Any | None) -> str | None:
    """Why an edited intervention must not run (hard limits; with no world model, the start region;
    then predicted safety), or None."""
    problems = edit_problems(spec, x, before_model=world is None)
    if problems:
        return "edit " + "; ".join(problems)
    if world is not None and spec.safety:  # nothing to predict without a limit (e.g. a screen)
        p = predicted_p_unsafe(world, [x])[0]
        for lim in spec.safety:
            if p.get(lim.name, 0.0) > lim.max_probability:
                # describe(): a limit may watch a readout, or have only an upper threshold
                return f"edit predicted unsafe: P({lim.describe()}) = {p[lim.name]:.2f} > {lim.max_probability:g} ({lim.name})"
    return None


def apply_decisions(
    ctx: LoopContext, rnd: int, ranking: Ranking, decisions: Sequence[Decision], world: Any | None
) -> list[Experiment]:
    """Store the decisions (once per round, in one commit: all of them or none) and return the
    experiments to submit."""
    selected: dict[str, RankedProposal] = {r.proposal.intervention.key(): r for r in ranking.selected}
    recorded: list[Decision] = []
    approved = []
    for d in decisions:
        chosen = selected.get(d.proposal_key)
        if chosen is None or d.action == "reject":
            recorded.append(d)
            continue
        x = chosen.proposal.intervention
        if d.action == "edit":
            edited = d.edited
            assert edited is not None
            problem = edit_problem(ctx.spec, edited, world)
            if problem:
                d = Decision(proposal_key=d.proposal_key, action="reject", by=d.by, reason=f"{problem} (edit by {d.by} refused)")
                recorded.append(d)
                continue
            x = edited
        recorded.append(d)
        hyps = (chosen.proposal.hypothesis_id,) if chosen.proposal.hypothesis_id else ()
        approved.append(
            Experiment(
                campaign_id=ctx.campaign_id,
                round=rnd,
                intervention=x,
                context={"world": ctx.spec.world, "seed": ctx.spec.seed},
                hypothesis_ids=hyps,
                approved_by=d.by,
                approval_note=d.reason,
            )
        )
    with ctx.store.transaction():
        if ctx.store.count(ctx.campaign_id, "decision", round=rnd) == 0:
            for d in recorded:
                ctx.store.append(ctx.campaign_id, "decision", d, round=rnd)
    return approved
