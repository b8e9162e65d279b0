"""Physiological hypotheses for insulin regimens, read off the best safe day so far.

The simglucose world's `hypotheses` hook returns these to the generic offline proposer: post-meal
highs call for larger meal boluses (a lower carb ratio), lows call for less insulin, a high mean
with room above the low limit calls for more basal insulin. Each rule proposes a small grid of
regimens scaled from the best one, clipped to the hard limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from wetloop.campaign import (
    CampaignSpec,
    CandidateDraft,
    HypothesisDraft,
    Intervention,
    Observation,
    ProposalContext,
)

from ._readouts import glucose_range

__all__ = ["regimen_hypotheses"]

Factors = Mapping[str, tuple[float, float]]
"""Per variable, the range of factors the best value is multiplied by (e.g. basal x 0.8..0.97)."""


def regimen_hypotheses(
    ctx: ProposalContext, safe: Sequence[tuple[Intervention, Observation, float]], n: int
) -> list[HypothesisDraft]:
    """Hypotheses about the regimen (variables `basal` and `carb_ratio`), read off the glucose readouts
    of the best safe day (`safe[0]`); each with about n/2 candidates (at least 4). Empty when the spec
    has no such variables or the day has no glucose readouts."""
    spec = ctx.spec
    if not safe or not {"basal", "carb_ratio"} <= set(spec.variable_names) or "max_glucose" not in safe[0][1].readouts:
        return []
    x, obs, _ = safe[0]
    return [_scaled(spec, x, factors, statement, n) for statement, factors in _rules(spec, x, obs.readouts)]


def _rules(spec: CampaignSpec, x: Intervention, r: Mapping[str, float]) -> list[tuple[str, Factors]]:
    """The rules the best day's readouts call for: (statement, factors) each."""
    low, high = glucose_range(spec)
    rules: list[tuple[str, Factors]] = []
    if r["max_glucose"] > high:
        rules.append(
            (
                (
                    f"Post-meal highs (max glucose {r['max_glucose']:.0f} mg/dL on the best day, "
                    f"{x.describe(spec)}) cost time in range: larger meal boluses (a lower carb ratio) should help."
                ),
                {"carb_ratio": (0.75, 0.95), "basal": (0.95, 1.05)},
            )
        )
    if r["min_glucose"] < low + 15:
        rules.append(
            (
                (
                    f"Lows (min glucose {r['min_glucose']:.0f} mg/dL on the best day) cost time in range and "
                    f"safety margin: less insulin (lower basal or higher carb ratio) should help."
                ),
                {"basal": (0.8, 0.97), "carb_ratio": (1.03, 1.2)},
            )
        )
    if r["mean_glucose"] > (low + high) / 2 + 20 and r["min_glucose"] > low + 20:
        rules.append(
            (
                (
                    f"Glucose runs high all day (mean {r['mean_glucose']:.0f} mg/dL) with room above the low "
                    f"limit (min {r['min_glucose']:.0f}): more basal insulin should help."
                ),
                {"basal": (1.05, 1.3), "carb_ratio": (0.95, 1.05)},
            )
        )
    return rules


def _scaled(spec: CampaignSpec, x: Intervention, factors: Factors, statement: str, n: int) -> HypothesisDraft:
    """A grid over the two factor ranges applied to the best regimen `x`, clipped to the hard limits."""
    grid = np.linspace(0.0, 1.0, max(2, int(np.ceil(np.sqrt(max(n // 2, 1))))))
    drafts = []
    for a in grid:
        for b in grid:
            values = dict(x.values)
            for (name, (f0, f1)), t in zip(factors.items(), (a, b)):
                v = spec.variable(name)
                values[name] = float(np.clip(float(x.values[name]) * (f0 + t * (f1 - f0)), v.lower, v.upper))  # type: ignore[arg-type]
            drafts.append(CandidateDraft(values=values, rationale="tests: " + statement.split(":")[-1].strip()))
    return HypothesisDraft(statement=statement, candidates=drafts[: max(n // 2, 4)])
