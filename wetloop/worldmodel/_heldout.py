"""Scores of a world model's samples on held-out experiments, beside calibration (`_metrics`).

Pure functions of samples and observations, for any world (`wetloop bench worldmodel` applies them):
the distance between the distributions of sampled and observed outcomes (energy distance), the share of
samples that break a world's declared bounds, the error of predicted differences between interventions,
and the regret of the pick a model would make from a menu of interventions. `OutcomeSamples` is what a
world's `forecast` hands over: samples of each readout and of each series a model predicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from wetloop.campaign import Intervention, Readout, Series

__all__ = [
    "Bound",
    "OutcomeSamples",
    "broken_share",
    "declared_bounds",
    "difference_scores",
    "energy_distance",
    "menu_regret",
    "sampled_outcomes",
]


@dataclass(frozen=True)
class OutcomeSamples:
    """Samples of what n experiments yield: `readouts` name -> (S, n); `series` name -> (S, n, T) on
    `times_min` (T,). S = 1 for a point forecast. `means` name -> (n,) gives a readout's predictive mean
    where the model knows it exactly (a 0/1 readout's probability), rather than the mean of its draws."""

    readouts: Mapping[str, Tensor]
    series: Mapping[str, Tensor] = field(default_factory=dict)
    times_min: tuple[float, ...] = ()
    means: Mapping[str, Tensor] = field(default_factory=dict)

    def mean(self, readout: str) -> Tensor:
        """The predictive mean (n,) of one readout."""
        exact = self.means.get(readout)
        return exact if exact is not None else self.readouts[readout].mean(0)


def sampled_outcomes(model: Any, interventions: Sequence[Intervention]) -> OutcomeSamples:
    """Samples of a fitted generic model (a scalar or series family: its BoTorch model's draws, read by
    its `outcome`, a `SampleOutcome`), for each intervention."""
    with torch.no_grad():
        values = model.botorch_model()(model.encode(interventions)).double()  # (S, n, D)
    outcome = model.outcome
    series = {name: outcome.series_values(values, name) for name in outcome.series}
    return OutcomeSamples(outcome.readouts(values), series, tuple(outcome.times_min.tolist()) if series else ())


@dataclass(frozen=True)
class Bound:
    """A world's declared constraint on what an experiment yields: every value of `target` (a series over
    time, or a readout) lies in [`lower`, `upper`] (None: unbounded that way). A prediction outside it is
    physically impossible (a negative concentration, a fraction above 1)."""

    kind: Literal["series", "readout"]
    target: str
    lower: float | None = None
    upper: float | None = None

    def describe(self) -> str:
        if self.lower is not None and self.upper is not None:
            return f"{self.lower:g} <= {self.target} <= {self.upper:g}"
        return f"{self.target} >= {self.lower:g}" if self.lower is not None else f"{self.target} <= {self.upper:g}"

    def broken(self, values: Tensor) -> Tensor:
        """Where a value lies outside the bound (a tolerance of 1e-9 for rounding). Shapes: any -> same, bool."""
        out = torch.zeros_like(values, dtype=torch.bool)
        if self.lower is not None:
            out |= values < self.lower - 1e-9
        if self.upper is not None:
            out |= values > self.upper + 1e-9
        return out


def declared_bounds(series: Sequence[Series], readouts: Sequence[Readout]) -> tuple[Bound, ...]:
    """The bounds a spec declares: each series' `lower` / `upper`, and each readout's `Readout.bounds`
    (a fraction of time or a binary readout in [0, 1], a statistic of a bounded series within its bounds)."""
    out = [Bound("series", s.name, s.lower, s.upper) for s in series if s.lower is not None or s.upper is not None]
    by_name = {s.name: s for s in series}
    for r in readouts:
        lo, hi = r.bounds(by_name.get(r.series or ""))
        if lo is not None or hi is not None:
            out.append(Bound("readout", r.name, lo, hi))
    return tuple(out)


def broken_share(samples: OutcomeSamples, bounds: Sequence[Bound]) -> tuple[float, list[str]] | None:
    """The share of sampled outcomes (S x n) with any value outside a bound, and the bounds that apply to
    what the samples hold; None when no bound applies to them."""
    hits: Tensor | None = None
    applied = []
    for b in bounds:
        values = samples.series.get(b.target) if b.kind == "series" else samples.readouts.get(b.target)
        if values is None:
            continue
        applied.append(b.describe())
        broke = b.broken(values)
        broke = broke.flatten(2).any(-1) if broke.ndim > 2 else broke  # a series: any time point
        hits = broke if hits is None else hits | broke
    if hits is None:
        return None
    return float(hits.double().mean()), applied


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance between the samples x (N, D) and y (M, D): sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) with
    Euclidean norms over the empirical distributions (Szekely's statistic; `scipy.stats.energy_distance`
    in one dimension). 0 for identical samples; it grows with any difference of the distributions."""
    x, y = x.double().reshape(len(x), -1), y.double().reshape(len(y), -1)
    xy, xx, yy = torch.cdist(x, y).mean(), torch.cdist(x, x).mean(), torch.cdist(y, y).mean()
    return float((2 * xy - xx - yy).clamp_min(0.0).sqrt())


def difference_scores(predicted: np.ndarray, observed: np.ndarray) -> tuple[float, float]:
    """Over every pair (i < j): the mean absolute error of the predicted difference p_i - p_j against the
    observed y_i - y_j, and the share of pairs whose predicted difference has the observed sign (a pair
    the prediction ties counts one half; pairs observed equal are left out of the share). Shapes: (n,), n >= 2."""
    i, j = np.triu_indices(len(observed), k=1)
    dp, dy = predicted[i] - predicted[j], observed[i] - observed[j]
    decided = dy != 0
    agree = np.where(dp == 0, 0.5, (np.sign(dp) == np.sign(dy)).astype(float))
    share = float(agree[decided].mean()) if decided.any() else float("nan")
    return float(np.abs(dp - dy).mean()), share


def menu_regret(
    predicted: np.ndarray,
    predicted_safe: np.ndarray,
    observed: np.ndarray,
    observed_safe: np.ndarray,
    size: int,
    menus: int,
    seed: int = 0,
) -> tuple[float, float, int] | None:
    """The regret of picking from random menus by prediction. Per menu of `size` of the n interventions
    (drawn without replacement, seeded): the pick is the best `predicted` utility among those predicted
    safe (among all when none is), ties shared equally; its regret is the best `observed` utility among
    the menu's observed-safe ones minus the pick's, where a pick that turns out unsafe is worth the menu's
    worst safe one. Returns (mean regret, share of picks unsafe, menus scored); menus without a safe
    intervention are skipped (None when every menu is). Shapes: (n,) each; utilities are to be maximised."""
    rng = np.random.default_rng(seed)
    regrets, unsafe = [], []
    for _ in range(menus):
        menu = rng.choice(len(observed), size=min(size, len(observed)), replace=False)
        safe = menu[observed_safe[menu]]
        if not len(safe):
            continue
        pool = menu[predicted_safe[menu]] if predicted_safe[menu].any() else menu
        picks = pool[predicted[pool] == predicted[pool].max()]
        worth = np.where(observed_safe[picks], observed[picks], observed[safe].min())
        regrets.append(observed[safe].max() - worth.mean())
        unsafe.append(float((~observed_safe[picks]).mean()))
    if not regrets:
        return None
    return float(np.mean(regrets)), float(np.mean(unsafe)), len(regrets)
