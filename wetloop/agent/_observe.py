"""Collecting a round's results: poll the lab, validate each result, store it once, flag surprises.

A result that fails validation is quarantined with its raw payload (never fed to the model), and the
experiment gets a `failed` observation that says so, so the round can finish.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wetloop.campaign import Experiment, Observation, Ranking, Ticket, result_problem
from wetloop.lab_adapters import MalformedResult

if TYPE_CHECKING:
    from .graph import LoopContext

__all__ = ["collect_observations", "validation_problem", "SURPRISE_SD", "SURPRISE_GAP", "SURPRISE_P"]

SURPRISE_SD = 2.5
SURPRISE_GAP = 0.02
SURPRISE_P = 0.025  # a screen's hit / non-hit: surprising when the model gave it less than this probability


def validation_problem(ctx: LoopContext, key: str, obs: Observation) -> str | None:
    """Why an observation must not be stored as a result (None when it is fine)."""
    if (problem := result_problem(key, obs, ctx.spec)) is not None or obs.status != "ok":
        return problem
    return ctx.world.result_problem(obs)


def _store_result(ctx: LoopContext, rnd: int, key: str, obs: Observation | None, raw: object, problem: str | None) -> None:
    if problem is None and obs is not None:
        ctx.store.append(ctx.campaign_id, "observation", obs, round=rnd, key=key)
        return
    failed = Observation(experiment_key=key, status="failed", message=f"result quarantined: {problem}", lab=ctx.lab.name)
    with ctx.store.transaction():  # the quarantined payload and the failed observation, or neither
        ctx.store.append(ctx.campaign_id, "quarantine", {"experiment_key": key, "reason": problem, "raw": raw}, round=rnd)
        ctx.store.append(ctx.campaign_id, "observation", failed, round=rnd, key=key)


def _flag_surprise(ctx: LoopContext, rnd: int, exp: Experiment, obs: Observation, ranking: Ranking | None) -> None:
    if ranking is None or obs.status != "ok":
        return
    key = exp.key
    for r in ranking.selected:
        s = r.score
        if r.proposal.intervention.key() != exp.intervention.key() or s.expected_value is None or s.value_std is None:
            continue
        observed = obs.readouts[ctx.spec.objective.readout]
        declared = ctx.world.readout(ctx.spec, ctx.spec.objective.readout)
        if declared is not None and declared.binary:  # a Bernoulli readout: the members' spread is not its noise
            p = s.expected_value if observed > 0 else 1.0 - s.expected_value
            if p < SURPRISE_P:
                note = (
                    f"{exp.intervention.describe(ctx.spec)}: {'a hit' if observed > 0 else 'not a hit'}, "
                    f"predicted P(hit) {s.expected_value:.3f}"
                )
                ctx.store.append(
                    ctx.campaign_id, "event", {"type": "surprise", "experiment_key": key, "p": p, "text": note}, round=rnd
                )
                ctx.console.print(f"  [magenta]surprise[/] {note}")
            continue
        gap = abs(observed - s.expected_value)
        z = gap / max(s.value_std, 1e-3)
        # far outside the predicted interval AND a material difference (2% of the predicted scale):
        # a tight prediction missed by a hair is not a surprise
        if z > SURPRISE_SD and gap > SURPRISE_GAP * max(1.0, abs(s.expected_value)):
            note = f"{exp.intervention.describe(ctx.spec)}: observed {observed:.3g}, predicted {s.expected_value:.3g} ± {s.value_std:.2g} ({z:.1f} sd)"
            ctx.store.append(
                ctx.campaign_id, "event", {"type": "surprise", "experiment_key": key, "z": z, "text": note}, round=rnd
            )
            ctx.console.print(f"  [magenta]surprise[/] {note}")


def _poll_once(ctx: LoopContext, rnd: int, exp: Experiment, ticket: Ticket, ranking: Ranking | None) -> bool:
    """Poll one experiment; store its result (or quarantine a malformed one). True when finished."""
    key = exp.key
    try:
        obs = ctx.lab.poll(ticket)
    except MalformedResult as exc:
        _store_result(ctx, rnd, key, None, exc.raw, exc.problem)
        return True
    except ValidationError as exc:
        raw = {"errors": exc.errors(include_url=False, include_context=False)}
        _store_result(ctx, rnd, key, None, raw, f"malformed result: {exc.error_count()} validation errors")
        return True
    if obs is None:
        return False
    with ctx.store.transaction():  # the result and its surprise flag, or neither
        _store_result(ctx, rnd, key, obs, obs.model_dump(mode="json"), validation_problem(ctx, key, obs))
        _flag_surprise(ctx, rnd, exp, obs, ranking)
    return True


def collect_observations(ctx: LoopContext, rnd: int) -> None:
    experiments = {e.key: e for e in ctx.store.experiments(ctx.campaign_id, round=rnd)}
    keys = set(experiments)
    done = ctx.store.observations(ctx.campaign_id)
    pending = {k: t for k, t in ctx.store.submissions(ctx.campaign_id).items() if k in keys and k not in done}
    rankings = ctx.store.records(ctx.campaign_id, "ranking", round=rnd)
    ranking = Ranking.model_validate(rankings[-1].payload) if rankings else None
    columns = (
        TextColumn("[bold cyan]round {task.fields[rnd]}[/] running experiments"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ctx.console, transient=True) as bar:
        task = bar.add_task("observe", total=len(pending), rnd=rnd)
        while pending:
            for key, ticket in list(pending.items()):
                if _poll_once(ctx, rnd, experiments[key], ticket, ranking):
                    del pending[key]
                    bar.advance(task)
            if pending:
                time.sleep(ctx.settings.poll_interval_s)
    _summarise(ctx, rnd, keys)


def _summarise(ctx: LoopContext, rnd: int, keys: set[str]) -> None:
    obs = ctx.store.observations(ctx.campaign_id)
    readout = ctx.spec.objective.readout
    text = ctx.world.round_summary(ctx.spec, [obs[k] for k in keys if k in obs], len(keys))
    if text is not None:
        ctx.console.print(f"[bold cyan]round {rnd}/{ctx.spec.budget.rounds}[/] observed {readout}: {text}")
        return
    parts = [
        f"{obs[k].readouts.get(readout, float('nan')):.3f}" if obs[k].status == "ok" else obs[k].status for k in keys if k in obs
    ]
    ctx.console.print(
        f"[bold cyan]round {rnd}/{ctx.spec.budget.rounds}[/] observed {readout}: {', '.join(sorted(parts, reverse=True))}"
    )
