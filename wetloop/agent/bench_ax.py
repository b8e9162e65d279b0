"""Ax, the peer a user would pick instead of wetloop for Bayesian optimisation, on any spec it can express.

Ax's `Client` with its default generation strategy (Sobol, then BoTorch), seeded; the spec's objective as
its objective (a `target` objective as the distance to the target, minimised) and every safety limit as
an outcome constraint (a readout's threshold directly; a series' as its minimum or maximum over the
experiment). The same lab runs its trials, round by round, with the spec's batch. Ax sometimes returns
fewer trials than asked for: the bench asks again (up to 5 times) and counts the rounds that still came
up short. Set-valued variables, and categorical ones whose choices the world decides, have no Ax
parameter: such specs are skipped, with the reason.

Ax is the optional `ax` extra (`pip install "wetloop[ax]"`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Observation
from wetloop.lab_adapters import make_lab, wait_for

__all__ = ["ax_missing", "ax_unsupported", "ax_campaign"]

Pairs = list[tuple[Intervention, Observation]]
INSTALL = 'pip install "wetloop[ax]"'


def ax_missing() -> str | None:
    """Why Ax cannot run here (not installed), or None."""
    import importlib.util

    return None if importlib.util.find_spec("ax") is not None else f"Ax is not installed ({INSTALL})"


def ax_unsupported(spec: CampaignSpec) -> str | None:
    """Why Ax cannot express this spec's variables, or None when it can."""
    for v in spec.interventions:
        if v.kind == "set":
            return f"variable {v.name!r} is a set, which Ax has no parameter for"
        if v.kind == "categorical" and (v.choices is None or len(v.choices) < 2):
            return f"variable {v.name!r} has no fixed list of choices for Ax"
    return None


def _metric(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _parameters(spec: CampaignSpec) -> list[Any]:
    from ax import ChoiceParameterConfig, RangeParameterConfig

    out: list[Any] = []
    for v in spec.interventions:
        if v.kind == "categorical":
            out.append(ChoiceParameterConfig(name=v.name, values=list(v.choices or ()), parameter_type="str", is_ordered=False))
        else:
            assert v.lower is not None and v.upper is not None
            kind: Literal["float", "int"] = "int" if v.kind == "integer" else "float"
            bounds = (int(v.lower), int(v.upper)) if kind == "int" else (float(v.lower), float(v.upper))
            out.append(RangeParameterConfig(name=v.name, bounds=bounds, parameter_type=kind, scaling=v.scale))
    return out


def _objective(spec: CampaignSpec) -> tuple[str, str]:
    """(metric name, Ax objective expression)."""
    o = spec.objective
    if o.direction == "target":
        name = _metric(f"distance_to_{o.readout}_target")
        return name, f"-{name}"
    name = _metric(o.readout)
    return name, name if o.direction == "maximize" else f"-{name}"


def _constraints(spec: CampaignSpec) -> list[tuple[str, str]]:
    """(metric name, Ax outcome constraint) for every threshold of every safety limit."""
    out = []
    for s in spec.safety:
        for side, threshold in (("below", s.below), ("above", s.above)):
            if threshold is None:
                continue
            if s.readout is not None:
                name = _metric(s.readout)
            else:
                name = _metric(f"{'min' if side == 'below' else 'max'}_{s.series}")
            out.append((name, f"{name} {'>=' if side == 'below' else '<='} {threshold!r}"))
    return out


def _metrics(spec: CampaignSpec, obs: Observation) -> dict[str, float] | None:
    """The trial's metrics for Ax, or None where the observation cannot give them (a failed run)."""
    if obs.status != "ok":
        return None
    o = spec.objective
    if o.readout not in obs.readouts:
        return None
    value = obs.readouts[o.readout]
    name, _ = _objective(spec)
    metrics = {name: abs(value - float(o.target_value)) if o.direction == "target" else value}  # type: ignore[arg-type]
    for s in spec.safety:
        if s.readout is not None:
            if s.readout not in obs.readouts:
                return None
            metrics[_metric(s.readout)] = obs.readouts[s.readout]
            continue
        series = obs.trajectory.series.get(s.series or "") if obs.trajectory is not None else None
        if not series:
            return None
        if s.below is not None:
            metrics[_metric(f"min_{s.series}")] = float(min(series))
        if s.above is not None:
            metrics[_metric(f"max_{s.series}")] = float(max(series))
    return metrics


def ax_campaign(spec: CampaignSpec, cache_dir: Path, seed: int) -> tuple[Pairs, dict[str, Any]]:
    """The spec's budget run by Ax, round by round through the spec's lab; (pairs, notes)."""
    from ax import Client

    for handler in logging.getLogger("ax").handlers:  # Ax logs every trial at INFO; the bench prints its own progress
        handler.setLevel(logging.WARNING)
    client = Client(random_seed=seed)
    client.configure_experiment(parameters=_parameters(spec), name=f"{_metric(spec.name)}_ax_{seed}")
    _, objective = _objective(spec)
    client.configure_optimization(objective=objective, outcome_constraints=[c for _, c in _constraints(spec)] or None)
    pairs: Pairs = []
    short_rounds, failed = 0, 0
    with make_lab(spec, cache_dir=cache_dir) as lab:
        for rnd in range(1, spec.budget.rounds + 1):
            trials: dict[int, Any] = {}
            for _ in range(5):  # Ax's default strategy can hand back fewer than asked for: ask again
                trials |= client.get_next_trials(max_trials=spec.budget.batch - len(trials))
                if len(trials) >= spec.budget.batch:
                    break
            short_rounds += len(trials) < spec.budget.batch
            xs = {i: Intervention(values=dict(p)) for i, p in trials.items()}
            exps = {
                i: Experiment(campaign_id=f"ax-{seed}", round=rnd, intervention=x, approved_by="policy:ax") for i, x in xs.items()
            }
            observations = wait_for(lab, [lab.submit(e) for e in exps.values()])
            for (i, x), o in zip(xs.items(), observations):
                pairs.append((x, o))
                metrics = _metrics(spec, o)
                if metrics is None:
                    failed += 1
                    client.mark_trial_failed(i, failed_reason=o.message or o.status)
                else:
                    client.complete_trial(i, raw_data=metrics)
    return pairs, {"short_rounds": short_rounds, "failed": failed, "recommended": _recommended(client)}


def _recommended(client: Any) -> dict[str, Any] | None:
    """Ax's own pick: the best tried parameters by its model's predictions, among those not observed to
    break a constraint (its raw best when the model cannot say); None when no trial qualifies."""
    try:
        parameters, *_ = client.get_best_parameterization(use_model_predictions=True)
    except Exception:  # Ax raises several kinds when no completed trial satisfies the constraints
        return None
    return dict(parameters)
