"""`dense_optimum`: the best safe answer to a campaign on world `sbml`, found by brute force.

The bench compares a campaign's best safe result with this number: a scrambled Sobol design of the
whole intervention space (and one of the start region, which the first round draws from), each
point simulated noise-free, its readouts and safety events computed as the lab computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wetloop.campaign import CampaignSpec, Observation, SpecError, event_happened

from ._lab import observation_of
from ._model import model_info
from ._options import SbmlOptions
from ._simulate import SimulationError, simulate

__all__ = ["DenseOptimum", "dense_optimum"]


@dataclass(frozen=True)
class DenseOptimum:
    """The best safe objective value over `n` points of the space and over `n_start` of the start region.

    `best_value`/`start_best_value` are the objective readout (None when no point was safe);
    `best_values` the intervention that reached it; `fraction_unsafe` the share of the `n` points
    that crossed a safety limit (`fraction_failed` those roadrunner could not run).
    """

    best_value: float | None
    best_values: dict[str, float] = field(default_factory=dict)
    best_readouts: dict[str, float] = field(default_factory=dict)
    start_best_value: float | None = None
    start_best_values: dict[str, float] = field(default_factory=dict)
    fraction_unsafe: float = 0.0
    fraction_failed: float = 0.0
    n: int = 0
    n_start: int = 0


def dense_optimum(spec: CampaignSpec, n: int = 512, *, n_start: int | None = None, seed: int = 0) -> DenseOptimum:
    """Simulate a Sobol design over the spec's numeric variables (noise-free) and return the best
    point that breaks no safety limit, by the objective's direction (see `DenseOptimum`)."""
    options = SbmlOptions.model_validate(spec.world_options).model_copy(
        update={"noise": SbmlOptions.model_fields["noise"].default}
    )
    full = _evaluate(spec, options, _design(spec, n, seed, start=False))
    start = _evaluate(spec, options, _design(spec, n_start or max(n // 4, 8), seed + 1, start=True))
    best, start_best = _best(spec, full), _best(spec, start)
    return DenseOptimum(
        best_value=best[1] if best else None,
        best_values=best[0] if best else {},
        best_readouts=best[2] if best else {},
        start_best_value=start_best[1] if start_best else None,
        start_best_values=start_best[0] if start_best else {},
        fraction_unsafe=float(np.mean([r is not None and not r[1] for r in full])) if full else 0.0,
        fraction_failed=float(np.mean([r is None for r in full])) if full else 0.0,
        n=len(full),
        n_start=len(start),
    )


def _design(spec: CampaignSpec, n: int, seed: int, *, start: bool) -> list[dict[str, float]]:
    """`n` interventions: a scrambled Sobol sample on each variable's scale (its start region if `start`)."""
    from scipy.stats import qmc

    numeric = [v for v in spec.interventions if v.is_numeric]
    if len(numeric) != len(spec.interventions):
        raise SpecError("dense_optimum covers numeric variables only; this spec has categorical or set variables")
    u = qmc.Sobol(len(numeric), scramble=True, seed=seed).random(n)
    rows = []
    for point in u:
        row = {}
        for v, x in zip(numeric, point):
            lo, hi = (v.to_unit(b) for b in v.start_bounds) if start else (0.0, 1.0)
            row[v.name] = float(v.from_unit(float(lo + x * (hi - lo))))
        rows.append(row)
    return rows


def _evaluate(spec: CampaignSpec, options: SbmlOptions, points: list[dict[str, float]]) -> list[Any]:
    """Per point: (values, safe, readouts), or None when the run failed."""
    info = model_info(options.model)
    out: list[Any] = []
    for i, values in enumerate(points):
        try:
            series = simulate(info, options, values)
        except (SimulationError, ValueError):
            out.append(None)
            continue
        obs = observation_of(spec, options, info, f"dense-{i}", series)
        out.append((values, _safe(spec, obs), dict(obs.readouts)) if obs.status == "ok" else None)
    return out


def _safe(spec: CampaignSpec, obs: Observation) -> bool:
    from wetloop.campaign import unsafe_readout_name

    for limit in spec.safety:
        flag = obs.readouts.get(unsafe_readout_name(limit))
        value = obs.readouts.get(limit.readout or "")
        if (flag is not None and flag > 0) or (
            limit.readout is not None and value is not None and event_happened(limit, np.asarray([value]))
        ):
            return False
    return True


def _best(spec: CampaignSpec, results: list[Any]) -> tuple[dict[str, float], float, dict[str, float]] | None:
    safe = [r for r in results if r is not None and r[1] and spec.objective.readout in r[2]]
    if not safe:
        return None
    values, _, readouts = max(safe, key=lambda r: spec.objective.utility(r[2][spec.objective.readout]))
    return values, readouts[spec.objective.readout], readouts
