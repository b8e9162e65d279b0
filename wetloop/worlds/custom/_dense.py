"""The best safe answer of a custom campaign by brute force: `n` uniform draws in the hard limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Value, Variable, observed_safe
from wetloop.lab_adapters import Lab, wait_for

__all__ = ["DenseOptimum", "dense_optimum"]


@dataclass(frozen=True)
class DenseOptimum:
    """The best safe objective value over `n` draws (None when none was safe) and where it was."""

    best_value: float | None
    best_values: dict[str, Any] = field(default_factory=dict)
    start_best_value: float | None = None
    fraction_unsafe: float = 0.0
    n: int = 0


def _draw(var: Variable, rng: np.random.Generator) -> Value:
    if var.is_numeric:
        return var.from_unit(float(rng.uniform()))
    if var.kind == "categorical":
        return str(rng.choice(list(var.choices or ())))
    items = var.items or ()
    k = int(rng.integers(var.min_items, var.most_items + 1))
    return {items[i]: str(rng.choice(list(var.levels))) for i in sorted(rng.choice(len(items), size=k, replace=False))}


def dense_optimum(spec: CampaignSpec, lab: Lab, n: int = 1024, seed: int = 0) -> DenseOptimum:
    """Run `n` uniform draws through `lab` (closed afterwards) and return the best safe one."""
    rng = np.random.default_rng(seed)
    xs = [Intervention(values={v.name: _draw(v, rng) for v in spec.interventions}) for _ in range(n)]
    with lab:
        exps = [Experiment(campaign_id="dense", round=1, intervention=x, approved_by="bench") for x in xs]
        observations = wait_for(lab, [lab.submit(e) for e in exps])
    readout = spec.objective.readout
    safe = [(x, o.readouts[readout]) for x, o in zip(xs, observations) if observed_safe(spec, o) and readout in o.readouts]
    unsafe = sum(o.status == "ok" and not observed_safe(spec, o) for o in observations)
    if not safe:
        return DenseOptimum(best_value=None, fraction_unsafe=unsafe / n, n=n)
    x, value = max(safe, key=lambda t: spec.objective.utility(t[1]))
    return DenseOptimum(best_value=float(value), best_values=dict(x.values), fraction_unsafe=unsafe / n, n=n)
