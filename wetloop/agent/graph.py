"""The loop as a LangGraph graph: propose -> validate -> simulate -> rank -> review -> submit ->
observe -> learn, and round again until the budget is spent, or until nothing can improve on the
best result (its objective at the ceiling): then the spec's `at_ceiling.action` stops the campaign,
replicates the best result in one more round (replicate -> review -> ... -> learn) and stops, or
goes on exploring.

Every node reads what it needs from the campaign store and appends what it did; the graph state
only carries the round and this round's candidates. The state is checkpointed after every node,
and every node is written so that running it again from its top (after a crash, or when a review
resumes it) stores nothing twice and submits nothing twice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from pydantic import ValidationError
from rich.console import Console

from wetloop.campaign import (
    CampaignSpec,
    CampaignStore,
    CeilingReached,
    Decision,
    EarlyStop,
    Experiment,
    Hypothesis,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    ScoreBreakdown,
    computed_readouts,
    get_world,
)
from wetloop.lab_adapters import ExperimentRejected, Lab
from wetloop.planners import EmptyMenu, KnowsCeiling, Planner

from ._evidence import hypothesis_ids, update_hypotheses
from ._prior import prior_history
from ._proposal import ProposalContext, Proposer, ProposerReply
from ._review import apply_decisions, autonomous_decisions, review_payload
from .configuration import AgentSettings
from .state import LoopState

__all__ = ["LoopContext", "build_graph", "history", "current_world"]


@dataclass
class LoopContext:
    """What the nodes work with; built once by the CLI's `run` (not checkpointed)."""

    spec: CampaignSpec
    campaign_id: str
    store: CampaignStore
    lab: Lab
    planner: Planner
    proposer: Proposer
    fallback: Proposer
    models_dir: Path
    settings: AgentSettings = field(default_factory=AgentSettings)
    world_config: Any = None  # the world model's settings, handed to `World.new_model` (None: its defaults)
    console: Console = field(default_factory=lambda: Console(stderr=True))
    _world: tuple[str, Any] | None = None

    @property
    def world(self) -> Any:
        """The campaign's world (`campaign.get_world(spec.world)`): its lab, model, planner, proposer."""
        return get_world(self.spec.world)


Ctx = Runtime[LoopContext]
AfterRound = Literal["propose", "replicate", "__end__"]


# -- helpers shared by nodes ---------------------------------------------------------------------
def history(ctx: LoopContext) -> list[tuple[Intervention, Observation]]:
    """Every experiment with its observation, in the order they were approved.

    With `settings.shuffle_feedback` (the negative control) each round's observations are permuted
    among that round's experiments before the loop sees them: the model, the proposer and the planner
    learn from answers that belong to other experiments, while the store keeps the true ones."""
    obs = ctx.store.observations(ctx.campaign_id)
    done = [e for e in ctx.store.experiments(ctx.campaign_id) if e.key in obs]
    answers = [obs[e.key] for e in done]
    if ctx.settings.shuffle_feedback:
        for rnd in sorted({e.round for e in done}):
            at = [i for i, e in enumerate(done) if e.round == rnd]
            order = np.random.default_rng([ctx.spec.seed, rnd, 1729]).permutation(len(at))
            moved = [answers[at[j]] for j in order]
            for i, answer in zip(at, moved):
                answers[i] = answer
    return [(e.intervention, a) for e, a in zip(done, answers)]


def current_world(ctx: LoopContext) -> Any:
    """The latest fitted world model of the campaign (loaded from disk once per version), or None.

    Before any result, the world's prior model if it has one (a screen's knowledge prior), else None.
    """
    rec = ctx.store.latest(ctx.campaign_id, "model")
    if rec is None and ctx.settings.prior and ctx.settings.learn:  # a model of the prior data before any result
        _refit(ctx, 0)
        rec = ctx.store.latest(ctx.campaign_id, "model")
    if rec is None:
        if ctx._world is None or ctx._world[0] != "prior":
            ctx._world = ("prior", ctx.world.prior_model(ctx.spec))
        return ctx._world[1]
    version = rec.payload["version"]
    if ctx._world is None or ctx._world[0] != version:
        ctx._world = (version, ctx.world.load_model(rec.payload["path"], ctx.spec))
    return ctx._world[1]


def _library(ctx: LoopContext) -> Any:
    """The names a world-decided categorical variable accepts (a screen's genes), or None."""
    return ctx.world.library(current_world(ctx))


def _say(ctx: LoopContext, round: int, text: str) -> None:
    ctx.console.print(f"[bold cyan]round {round}/{ctx.spec.budget.rounds}[/] {text}")


# -- nodes -----------------------------------------------------------------------------------------
def propose(state: LoopState, runtime: Ctx) -> Command[Literal["validate"]]:
    """Ask the proposer (LLM or offline) for hypotheses and raw candidates; fall back if it fails."""
    ctx = runtime.context
    rnd = state.get("round", 0) + 1
    pctx = _proposal_context(ctx, rnd)
    remote = ctx.proposer is not ctx.fallback
    if remote:  # a remote proposer can take minutes: say what the campaign waits for
        _say(ctx, rnd, f"asking the {getattr(ctx.proposer, 'waiting_for', ctx.proposer.name)}")
    t0 = time.perf_counter()
    reply = ctx.proposer.propose(pctx)
    took = f" in {time.perf_counter() - t0:.0f} s" if remote else ""
    records: list[Record] = [  # the raw reply once, with the first problem
        ("invalid_proposal", {"raw": reply.raw if i == 0 else None, "reason": problem, "source": reply.source}, None)
        for i, problem in enumerate(reply.problems)
    ]
    extra = None  # the offline proposer's candidates, where a remote proposer's are too few to fill the batch
    if remote and (usable := _usable(ctx, rnd, reply))[0] == 0:
        # recorded here: these candidates never reach `validate`
        records += [("invalid_proposal", {"raw": c, "reason": why, "source": reply.source}, None) for c, why in usable[1]]
        why = "; ".join(reply.problems) or "none passed validation"
        _say(
            ctx,
            rnd,
            f"[yellow]{reply.source} proposer gave no valid candidates{took} ({why}); using the offline proposer "
            "(the reply is kept in the store)[/]",
        )
        reply, took = ctx.fallback.propose(pctx), ""
    elif remote and usable[0] < ctx.spec.budget.batch:
        extra = ctx.fallback.propose(pctx)
    with ctx.store.transaction():  # the round's proposer records are one commit: all of them or none
        _append_all(ctx, rnd, records)
        raw = _record_hypotheses(ctx, rnd, reply)
        added = _record_hypotheses(ctx, rnd, extra) if extra is not None else []
    _say(ctx, rnd, f"{reply.source} proposer: {len(reply.hypotheses)} hypotheses, {len(raw)} candidates{took}")
    if extra is not None:
        _say(
            ctx,
            rnd,
            f"[yellow]only {usable[0]} of them valid, fewer than the batch of {ctx.spec.budget.batch}: "
            f"the {extra.source} proposer adds {len(added)} candidates[/]",
        )
    return Command(goto="validate", update={"round": rnd, "raw": raw + added, "candidates": [], "approved": []})


Record = tuple[str, Any, "str | None"]
"""A record a node appends: its kind, its payload, its key (None: a kind that may repeat)."""


def _append_all(ctx: LoopContext, rnd: int, records: list[Record]) -> None:
    """Append a node's records in one transaction, so a kill between two of them stores none."""
    with ctx.store.transaction():
        for kind, payload, key in records:
            ctx.store.append(ctx.campaign_id, kind, payload, round=rnd, key=key)


def _proposal_context(ctx: LoopContext, rnd: int) -> ProposalContext:
    return ProposalContext(
        spec=ctx.spec,
        round=rnd,
        history=history(ctx) if ctx.settings.learn else [],
        hypotheses=list(ctx.store.hypotheses(ctx.campaign_id).values()),
        n_candidates=ctx.settings.candidates_per_round,
        seed=ctx.spec.seed,
    )


def _raw_candidates(ids: dict[str, str], reply: ProposerReply) -> list[dict[str, Any]]:
    """The reply's candidates as the state carries them, each with the id of its hypothesis."""
    return [
        {"values": c.values, "rationale": c.rationale, "hypothesis_id": ids[d.statement], "source": reply.source}
        for d in reply.hypotheses
        for c in d.candidates
    ]


def _hypothesis_ids(ctx: LoopContext, rnd: int, reply: ProposerReply) -> dict[str, str]:
    """Each statement's hypothesis id; one stated in an earlier round keeps its id (`hypothesis_ids`)."""
    return hypothesis_ids(ctx.store.hypotheses(ctx.campaign_id), rnd, [d.statement for d in reply.hypotheses])


def _usable(ctx: LoopContext, rnd: int, reply: ProposerReply) -> tuple[int, list[tuple[dict[str, Any], str]]]:
    """How many distinct candidates of the reply `validate` would keep, and each one it would reject with why."""
    already, library, seen = {x.key() for x, _ in history(ctx)}, _library(ctx), set[str]()
    kept, rejected = 0, []
    for raw in _raw_candidates(_hypothesis_ids(ctx, rnd, reply), reply):
        proposal, reason = _check_candidate(ctx.spec, raw, already, seen, library)
        if proposal is None:
            rejected.append((raw, reason))
        else:
            kept += 1
            seen.add(proposal.intervention.key())
    return kept, rejected


def _record_hypotheses(ctx: LoopContext, rnd: int, reply: ProposerReply) -> list[dict[str, Any]]:
    known, ids = set(ctx.store.hypotheses(ctx.campaign_id)), _hypothesis_ids(ctx, rnd, reply)
    for draft in reply.hypotheses:
        hid = ids[draft.statement]
        if hid not in known:
            ctx.store.append(
                ctx.campaign_id,
                "hypothesis",
                Hypothesis(id=hid, statement=draft.statement, source=reply.source, round=rnd),
                round=rnd,
                key=hid,
            )
            known.add(hid)
    return _raw_candidates(ids, reply)


def validate(state: LoopState, runtime: Ctx) -> Command[Literal["simulate"]]:
    """Check every raw candidate against the hard limits; record each rejection with its reason."""
    ctx, rnd = runtime.context, state["round"]
    already = {x.key() for x, _ in history(ctx)}
    fresh = ctx.store.count(ctx.campaign_id, "proposal", round=rnd) == 0
    valid, library = [], _library(ctx)
    seen: set[str] = set()
    set_aside: Counter[str] = Counter()
    records: list[Record] = []
    for raw in state["raw"]:
        proposal, reason = _check_candidate(ctx.spec, raw, already, seen, library)
        if proposal is None:
            set_aside[_kind_of(reason)] += 1
            records.append(("invalid_proposal", {"raw": raw, "reason": reason, "source": raw.get("source")}, None))
            continue
        seen.add(proposal.intervention.key())
        valid.append(proposal)
        records.append(("proposal", proposal, proposal.intervention.key()))
    if fresh:  # every candidate's record in one commit, so `fresh` means none of them is stored
        _append_all(ctx, rnd, records)
    _say(ctx, rnd, f"validated: {len(valid)} candidates kept{_set_aside_text(set_aside)}")
    return Command(goto="simulate", update={"candidates": [p.model_dump(mode="json") for p in valid]})


_ALREADY_RUN, _DUPLICATE = "already run", "duplicate of another candidate this round"


def _kind_of(reason: str) -> str:
    """Why a candidate was set aside, as the validate line counts it."""
    if reason.startswith(_DUPLICATE):
        return "duplicates within the round"
    return "already run" if reason.startswith(_ALREADY_RUN) else "outside the limits or malformed"


def _set_aside_text(counts: Counter[str]) -> str:
    """ ", 246 set aside (duplicates within the round: 240, already run: 6)": what the candidates not kept were."""
    if not counts:
        return ", none set aside"
    return f", {counts.total()} set aside ({', '.join(f'{kind}: {n}' for kind, n in counts.most_common())})"


def _check_candidate(
    spec: CampaignSpec, raw: dict, already: set[str], seen: set[str], library: dict[str, int] | None = None
) -> tuple[Proposal | None, str]:
    try:
        x = Intervention(values=raw.get("values") or {})
    except ValidationError as exc:
        return None, f"malformed values {raw.get('values')!r}: {exc.errors()[0]['msg']}"
    problems = x.violations(spec)
    if library is not None and not problems:
        open_names = [v.name for v in spec.interventions if v.kind == "categorical" and v.choices is None]
        unknown = [str(x.values[n]) for n in open_names if str(x.values[n]) not in library]
        if unknown:
            problems = [f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not in the world's library"]
    if problems:
        return None, "; ".join(problems)
    if x.key() in already:
        return None, f"{_ALREADY_RUN}: {x.describe(spec)}"
    if x.key() in seen:
        return None, f"{_DUPLICATE}: {x.describe(spec)}"
    return Proposal(
        intervention=x, hypothesis_id=raw.get("hypothesis_id"), rationale=raw.get("rationale", ""), source=raw.get("source", "")
    ), ""


def simulate(state: LoopState, runtime: Ctx) -> Command[Literal["rank"]]:
    """Roll every candidate forward with the world model (trajectory samples per ensemble member)."""
    ctx, rnd = runtime.context, state["round"]
    world = current_world(ctx)
    if world is None:
        _say(ctx, rnd, "no world model yet (no data on this system): candidates are not simulated")
        return Command(goto="rank")
    t0 = time.perf_counter()
    proposals = [Proposal.model_validate(p) for p in state["candidates"]]
    model = world.botorch_model()
    samples = model.posterior(world.encode([p.intervention for p in proposals]).unsqueeze(-2)).values
    _say(
        ctx,
        rnd,
        f"simulated {len(proposals)} candidates x {samples.shape[1]} trajectory samples "
        f"({model.members} members) in {time.perf_counter() - t0:.2f} s",
    )
    return Command(goto="rank")


def rank(state: LoopState, runtime: Ctx) -> Command[Literal["review", "__end__"]]:
    """Score and select the round's batch (reusing the stored ranking if this node runs again).

    A menu with nothing selectable (every candidate outside the start region, removed for safety, or
    already run) gets the offline proposer's candidates, ranked with the rest and recorded with why,
    where the round's candidates came from another proposer; if even then nothing can run, the
    campaign stops here, recorded and said (the CLI exits non-zero), instead of running empty rounds."""
    ctx, rnd = runtime.context, state["round"]
    stored = ctx.store.records(ctx.campaign_id, "ranking", round=rnd)
    if stored:
        ranking = Ranking.model_validate(stored[-1].payload)
    else:
        proposals = [Proposal.model_validate(p) for p in state["candidates"]]
        ranking, records = _rank(ctx, rnd, proposals), list[Record]()
        if not ranking.selected and any(p.source != ctx.fallback.name for p in proposals):
            why = _nothing_selectable(ranking)
            _say(
                ctx,
                rnd,
                f"[yellow]nothing the {_sources(proposals)} proposer gave can run ({why}); adding the offline proposer's candidates[/]",
            )
            added, records = _fallback_candidates(ctx, rnd, proposals)
            ranking = _rank(ctx, rnd, proposals + added)
            records.append(("event", {"type": "fallback", "round": rnd, "reason": why, "added": len(added)}, None))
        with ctx.store.transaction():
            for kind, payload, key in records:
                ctx.store.append(ctx.campaign_id, kind, payload, round=rnd, key=key)
            ctx.store.append(ctx.campaign_id, "ranking", ranking, round=rnd)
    _say(ctx, rnd, f"ranked {len(ranking.ranked)}; removed {len(ranking.removed)} for safety; selected {len(ranking.selected)}")
    if not ranking.selected:
        return _stop_early(ctx, rnd, f"round {rnd} could run no experiment: {_nothing_selectable(ranking)}", stalled=True)
    return Command(goto="review")


def _rank(ctx: LoopContext, rnd: int, proposals: list[Proposal]) -> Ranking:
    try:
        return ctx.planner.rank(proposals, current_world(ctx), history(ctx), rnd)
    except EmptyMenu as exc:  # nothing valid to rank
        return Ranking(round=rnd, ranked=(), note=str(exc))


def _sources(proposals: list[Proposal]) -> str:
    return ", ".join(sorted({p.source for p in proposals})) or "no"


def _nothing_selectable(ranking: Ranking) -> str:
    """Why a ranking selected nothing, in words (the first removals' reasons)."""
    if not ranking.ranked and not ranking.removed:
        return "no valid candidate to rank"
    reasons = Counter(r.limit for r in ranking.removed)
    run = sum(1 for r in ranking.ranked if not r.selected)
    parts = [f"{n} removed ({limit})" for limit, n in reasons.most_common()] + ([f"{run} not selectable"] if run else [])
    return f"of {len(ranking.ranked) + len(ranking.removed)} candidates, " + ", ".join(parts)


def _fallback_candidates(ctx: LoopContext, rnd: int, proposals: list[Proposal]) -> tuple[list[Proposal], list[Record]]:
    """The offline proposer's valid candidates for round `rnd` (those not already on the menu), and the
    records that say so: their hypotheses and proposals."""
    reply = ctx.fallback.propose(_proposal_context(ctx, rnd))
    already, library = {x.key() for x, _ in history(ctx)}, _library(ctx)
    seen = {p.intervention.key() for p in proposals}
    ids = _hypothesis_ids(ctx, rnd, reply)
    known = set(ctx.store.hypotheses(ctx.campaign_id))
    records: list[Record] = [
        ("hypothesis", Hypothesis(id=ids[d.statement], statement=d.statement, source=reply.source, round=rnd), ids[d.statement])
        for d in reply.hypotheses
        if ids[d.statement] not in known
    ]
    added = []
    for raw in _raw_candidates(ids, reply):
        proposal, _ = _check_candidate(ctx.spec, raw, already, seen, library)
        if proposal is not None:
            seen.add(proposal.intervention.key())
            added.append(proposal)
            records.append(("proposal", proposal, proposal.intervention.key()))
    return added, records


def review(state: LoopState, runtime: Ctx) -> Command[Literal["submit"]]:
    """The review gate: a person decides (interrupt) or the autonomous policy approves, recorded."""
    ctx, rnd = runtime.context, state["round"]
    ranking = Ranking.model_validate(ctx.store.records(ctx.campaign_id, "ranking", round=rnd)[-1].payload)
    if ctx.settings.review and ranking.selected:  # nothing to decide when safety left no candidate
        raw = interrupt(review_payload(ctx.spec, ctx.campaign_id, ranking))
        decisions = [Decision.model_validate(d) for d in raw]
    else:
        decisions = autonomous_decisions(ranking)
    approved = apply_decisions(ctx, rnd, ranking, decisions, current_world(ctx))
    ceiling = _replicating(ctx, rnd)
    if ceiling is not None:  # the same intervention again: its own key, so the lab runs it once more
        approved = [e.model_copy(update={"context": {**e.context, "replicate_of": ceiling.experiment_key}}) for e in approved]
    _say(ctx, rnd, f"review: {len(approved)} approved of {len(ranking.selected)} ({decisions[0].by if decisions else 'none'})")
    return Command(goto="submit", update={"approved": [e.model_dump(mode="json") for e in approved]})


def submit(state: LoopState, runtime: Ctx) -> Command[Literal["observe"]]:
    """Submit each approved experiment once: the store's submission record is the proof."""
    ctx, rnd = runtime.context, state["round"]
    submitted = ctx.store.submissions(ctx.campaign_id)
    for data in state["approved"]:
        exp = Experiment.model_validate(data)
        ctx.store.append(ctx.campaign_id, "experiment", exp, round=rnd, key=exp.key)
        if exp.key in submitted:
            continue
        try:
            ticket = ctx.lab.submit(exp)
        except ExperimentRejected as exc:
            rejected = Observation(experiment_key=exp.key, status="rejected", message=str(exc), lab=ctx.lab.name)
            ctx.store.append(ctx.campaign_id, "observation", rejected, round=rnd, key=exp.key)
            continue
        ctx.store.append(ctx.campaign_id, "submission", ticket, round=rnd, key=exp.key)
    _say(ctx, rnd, f"submitted {len(state['approved'])} experiments to {ctx.lab.name}")
    return Command(goto="observe")


def observe(state: LoopState, runtime: Ctx) -> Command[Literal["learn"]]:
    """Poll until every submitted experiment of the round has an observation; store each once."""
    from ._observe import collect_observations

    collect_observations(runtime.context, state["round"])
    return Command(goto="learn")


def learn(state: LoopState, runtime: Ctx) -> Command[AfterRound]:
    """Refit the world model on everything observed, store the version, update the hypotheses; then the
    next round, or the end: the budget is spent, or nothing can improve on the best result."""
    ctx, rnd = runtime.context, state["round"]
    if ctx.settings.learn:
        _refit(ctx, rnd)
    with ctx.store.transaction():  # every hypothesis's new version, or none
        update_hypotheses(ctx.spec, ctx.store, ctx.campaign_id, rnd)
    if rnd >= ctx.spec.budget.rounds:
        return Command(goto="__end__", update={"done": True})
    return _next_round(ctx, rnd)


def _next_round(ctx: LoopContext, rnd: int) -> Command[AfterRound]:
    """Another round, unless the best result is at the objective's ceiling: then the spec's at_ceiling.action.

    The ceiling is recorded once, at the end of the round that reached it, with the action the spec gave;
    running this again (a resume) reads the record and decides the same.
    """
    reached = ctx.store.ceiling(ctx.campaign_id)
    if reached is None:
        ceiling = ctx.planner.ceiling(history(ctx)) if isinstance(ctx.planner, KnowsCeiling) else None
        if ceiling is None:
            return Command(goto="propose")
        reached = CeilingReached(
            round=rnd,
            readout=ceiling.readout,
            best=ceiling.best,
            ceiling=ceiling.ceiling,
            experiment_key=ceiling.experiment_key,
            intervention=ceiling.intervention,
            action=ctx.spec.at_ceiling.action,
            reason=ceiling.describe(ctx.spec),
        )
        ctx.store.append(ctx.campaign_id, "event", reached, round=rnd, key="ceiling")
        _say(ctx, rnd, f"[bold green]{reached.reason}[/]; at_ceiling: {reached.action}")
    if reached.action == "explore":
        return Command(goto="propose")
    if reached.action == "replicate" and reached.round == rnd:
        return Command(goto="replicate")
    return _stop_early(ctx, rnd, reached.reason if reached.action == "stop" else _replicate_outcome(ctx, reached, rnd))


def _stop_early(ctx: LoopContext, rnd: int, reason: str, stalled: bool = False) -> Command[Any]:
    """End the campaign before its budget is spent, with the reason recorded once. `stalled`: it ends
    because a round could run nothing (recorded as the `stalled` event too; the CLI exits non-zero)."""
    stop = ctx.store.early_stop(ctx.campaign_id)
    if stop is None:
        stop = EarlyStop(
            round=rnd,
            rounds=ctx.spec.budget.rounds,
            experiments=ctx.store.count(ctx.campaign_id, "experiment"),
            budget_experiments=ctx.spec.budget.experiments,
            reason=reason,
        )
        with ctx.store.transaction():
            ctx.store.append(ctx.campaign_id, "event", stop, round=rnd, key="early_stop")
            if stalled:
                ctx.store.append(ctx.campaign_id, "event", {"type": "stalled", "reason": reason}, round=rnd, key="stalled")
    _say(ctx, rnd, f"[bold {'red' if stalled else ''}]{stop.describe()}[/]")
    return Command(goto="__end__", update={"done": True})


def _replicating(ctx: LoopContext, rnd: int) -> CeilingReached | None:
    """The ceiling this round replicates the best result of (None: an ordinary round)."""
    reached = ctx.store.ceiling(ctx.campaign_id)
    return reached if reached is not None and reached.action == "replicate" and reached.round == rnd - 1 else None


def _replicate_outcome(ctx: LoopContext, reached: CeilingReached, rnd: int) -> str:
    """The reason a replicated campaign stops: what the replicate gave next to the first result."""
    first = f"{reached.readout} = {reached.best:.4g} ({reached.intervention.describe(ctx.spec)}, round {reached.round})"
    observations = ctx.store.observations(ctx.campaign_id)
    runs = [observations.get(e.key) for e in ctx.store.experiments(ctx.campaign_id, round=rnd)]
    declared = ctx.world.readouts(ctx.spec)
    values = [
        {**computed_readouts(ctx.spec, o, declared), **o.readouts}.get(reached.readout)
        for o in runs
        if o is not None and o.status == "ok"
    ]
    if not runs:
        return f"the replicate of {first} was not approved; nothing can improve on it"
    if not values or values[0] is None:
        return f"the replicate of {first} gave no {reached.readout}; nothing can improve on the first result"
    return f"the replicate of {first} gave {values[0]:.4g}; nothing can improve on it"


def replicate(state: LoopState, runtime: Ctx) -> Command[Literal["review"]]:
    """A round of one experiment: the result at the ceiling, run again to confirm it (the spec's
    at_ceiling.action `replicate`). It goes through review like any batch."""
    ctx, rnd = runtime.context, state["round"] + 1
    reached = ctx.store.ceiling(ctx.campaign_id)
    assert reached is not None, "the replicate round follows a recorded ceiling"
    x = reached.intervention
    proposal = Proposal(
        intervention=x,
        rationale=f"replicate of the result at the ceiling ({reached.readout} = {reached.best:.4g}), to confirm it",
        source="replicate",
    )
    if not ctx.store.records(ctx.campaign_id, "ranking", round=rnd):
        score = ScoreBreakdown(cost=x.cost(ctx.spec), acquisition=0.0)
        ranking = Ranking(
            round=rnd,
            ranked=(RankedProposal(proposal=proposal, rank=1, score=score, selected=True),),
            note=f"{reached.reason}; as the spec's at_ceiling.action says (replicate), this round runs it once more.",
        )
        _append_all(ctx, rnd, [("proposal", proposal, x.key()), ("ranking", ranking, None)])
    _say(ctx, rnd, f"replicating {x.describe(ctx.spec)} ({reached.readout} = {reached.best:.4g}) to confirm it")
    return Command(goto="review", update={"round": rnd, "raw": [], "candidates": [], "approved": []})


def _refit(ctx: LoopContext, rnd: int) -> None:
    """Refit the world's model on every usable result, once per round and only when there is news
    (a round can run nothing)."""
    data = ctx.world.fit_data(prior_history(ctx.settings.prior) + history(ctx))
    last = ctx.store.latest(ctx.campaign_id, "model")
    new = len(data) - (last.payload.get("n_data", last.payload["fit"].get("n_days", 0)) if last else 0)
    if not data or new <= 0 or ctx.store.records(ctx.campaign_id, "model", round=rnd):
        return
    world = ctx.world.new_model(ctx.spec, ctx.world_config)
    report = world.fit(data)
    _store_model(ctx, rnd, world, ctx.world.model_suffix, report.model_dump(mode="json"), len(data))
    _say(ctx, rnd, ctx.world.fit_summary(report))


def _store_model(ctx: LoopContext, rnd: int, world: Any, suffix: str, fit: dict[str, Any], n_data: int) -> None:
    ctx.models_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.models_dir / f"round-{rnd:02d}-{world.version}{suffix}"
    world.save(path)
    payload = {"version": world.version, "round": rnd, "path": str(path), "fit": fit, "n_data": n_data}
    ctx.store.append(ctx.campaign_id, "model", payload, round=rnd)
    ctx._world = (world.version, world)


# -- wiring ---------------------------------------------------------------------------------------
def build_graph(checkpointer: Any = None) -> Any:
    """The compiled loop; pass a LangGraph checkpointer (SqliteSaver) to make it resumable."""
    builder = StateGraph(LoopState, context_schema=LoopContext)
    for node in (propose, validate, simulate, rank, review, submit, observe, learn, replicate):
        builder.add_node(node.__name__, node)
    builder.add_edge(START, "propose")
    return builder.compile(checkpointer=checkpointer)
