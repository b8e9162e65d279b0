"""The seven dimensions of `wetloop bench worldmodel`: what each measures, and its figure for one predictor.

Every function takes the held-out data (`HeldOut`) and one predictor (a world model or a baseline, as
samples: `Predictor`) and returns a cell: `{"value": ..., "text": ...}`, or `{"na": reason}` where the
dimension does not apply to the world or the predictor. `definitions` words each dimension for the
world at hand, to be printed beside its figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, SafetyLimit, observed_unsafe, unsafe_readout_name
from wetloop.worldmodel import (
    Bound,
    OutcomeSamples,
    broken_share,
    crps_ensemble,
    difference_scores,
    energy_distance,
    interval_coverage,
    limit_event,
    menu_regret,
)

__all__ = ["DIMENSIONS", "HeldOut", "Predictor", "definitions", "score"]

Cell = dict[str, Any]
HORIZONS = (0.25, 0.5, 0.75, 1.0)
"""Temporal coherence is read at these fractions of the experiment's duration."""
MENUS, MENU_SIZE, LEVEL = 200, 8, 0.9
POOLED = 4096
"""At most this many pooled samples enter an energy distance (drawn evenly over the held-out experiments)."""


@dataclass(frozen=True)
class HeldOut:
    """The split, as arrays. Series on `grid` (T,): train (n_train, T, s), test (n_test, T, s); readouts
    (every number each result reports, safety events included): train (n_train, R), test (n_test, R).
    `scale_*` are the training standard deviations (1 where a value never varied)."""

    spec: CampaignSpec
    train: list[tuple[Intervention, Observation]]
    test: list[tuple[Intervention, Observation]]
    series: tuple[str, ...]
    grid: np.ndarray
    train_series: np.ndarray
    test_series: np.ndarray
    readouts: tuple[str, ...]
    train_readouts: np.ndarray
    test_readouts: np.ndarray
    constraints: tuple[Bound, ...]
    realism_readouts: tuple[str, ...]
    """What observational realism compares when no model predicts a time course (the readouts every
    model predicts, safety events left out); empty when it compares series."""

    @property
    def scale_series(self) -> np.ndarray:
        return _scale(self.train_series.reshape(-1, len(self.series)))

    @property
    def scale_readouts(self) -> np.ndarray:
        return _scale(self.train_readouts)

    def observed(self, readout: str) -> np.ndarray:
        return self.test_readouts[:, self.readouts.index(readout)]


def _scale(values: np.ndarray) -> np.ndarray:
    sd = values.std(0) if len(values) else np.ones(values.shape[-1])
    return np.where(sd > 0, sd, 1.0)


@dataclass(frozen=True)
class Predictor:
    """A world model or a baseline, by its samples of the held-out experiments (S = 1: a point forecast).
    `why` says why it lacks something: key "all" (it does not apply), "series", or a readout's name."""

    label: str
    samples: OutcomeSamples | None
    point: bool = False
    why: dict[str, str] = field(default_factory=dict)

    def readout(self, name: str) -> Tensor | str:
        """Samples (S, n) of one readout, or why there are none."""
        if self.samples is None:
            return self.why["all"]
        got = self.samples.readouts.get(name)
        return got.double() if got is not None else self.why.get(name, f"it does not predict {name}")

    def mean(self, name: str) -> np.ndarray | str:
        """The predictive mean (n,) of one readout, or why there is none."""
        draws = self.readout(name)
        if isinstance(draws, str):
            return draws
        assert self.samples is not None  # it has the readout's draws
        return self.samples.mean(name).double().numpy()

    def series_on(self, data: HeldOut) -> Tensor | str:
        """Samples (S, n, T, s) of every series on the data's grid, or why there are none."""
        if self.samples is None:
            return self.why["all"]
        if not data.series:
            return "the experiments report no time course"
        missing = [s for s in data.series if s not in self.samples.series]
        if missing:
            return self.why.get("series", f"it does not predict the series {missing}")
        times = np.asarray(self.samples.times_min, dtype=float)
        values = torch.stack([self.samples.series[s].double() for s in data.series], dim=-1)
        if len(times) == len(data.grid) and np.allclose(times, data.grid):
            return values
        return _resample(values, times, data.grid)


def _resample(values: Tensor, times: np.ndarray, grid: np.ndarray) -> Tensor:
    """Linear interpolation along T (held beyond the ends). Shapes: values (..., T, s) on times (T,) -> (..., G, s)."""
    g = np.clip(grid, times[0], times[-1])
    hi = np.clip(np.searchsorted(times, g, side="right"), 1, len(times) - 1)
    lo = hi - 1
    w = torch.as_tensor((g - times[lo]) / np.where(times[hi] > times[lo], times[hi] - times[lo], 1.0))[:, None]
    return values[..., lo, :] * (1 - w) + values[..., hi, :] * w


# -- the dimensions -----------------------------------------------------------------------------------
def realism(data: HeldOut, p: Predictor) -> Cell:
    if data.realism_readouts:
        draws = [p.readout(r) for r in data.realism_readouts]
        if reason := next((d for d in draws if isinstance(d, str)), None):
            return {"na": reason}
        scale = np.array([data.scale_readouts[data.readouts.index(r)] for r in data.realism_readouts])
        sampled = torch.stack([d for d in draws if isinstance(d, Tensor)], dim=-1) / torch.as_tensor(scale)
        observed = np.stack([data.observed(r) for r in data.realism_readouts], axis=-1) / scale
    else:
        series = p.series_on(data)
        if isinstance(series, str):
            return {"na": series}
        sampled = (series / torch.as_tensor(data.scale_series)).flatten(2)  # (S, n, T s)
        observed = (data.test_series / data.scale_series).reshape(len(data.test), -1)
    pooled = sampled[:: max(1, len(sampled) * len(data.test) // POOLED)].reshape(-1, sampled.shape[-1])
    value = energy_distance(pooled, torch.as_tensor(observed))
    return {"value": value, "text": f"{value:.3g}"}


def consistency(data: HeldOut, p: Predictor) -> Cell:
    if p.samples is None:
        return {"na": p.why["all"]}
    if not data.constraints:
        return {"na": "the world declares no bounds on what an experiment yields"}
    got = broken_share(p.samples, data.constraints)
    if got is None:
        return {"na": "no declared bound applies to what it predicts"}
    share, applied = got
    return {"value": share, "bounds": applied, "text": f"{share:.1%}"}


def temporal(data: HeldOut, p: Predictor) -> Cell:
    series = p.series_on(data)
    if isinstance(series, str):
        return {"na": series}
    error = ((series.median(0).values - torch.as_tensor(data.test_series)).abs() / torch.as_tensor(data.scale_series)).mean(
        (0, 2)
    )  # (T,)
    at = _horizon_index(data.grid)
    values = {f"{data.grid[i] - data.grid[0]:g}": float(error[i]) for i in at}
    return {"value": values, "text": " / ".join(f"{v:.2f}" for v in values.values())}


def _horizon_index(grid: np.ndarray) -> list[int]:
    """The grid points nearest each `HORIZONS` fraction of the experiment's duration."""
    span = grid[-1] - grid[0]
    return [int(np.argmin(np.abs(grid - grid[0] - h * span))) for h in HORIZONS]


def accuracy(data: HeldOut, p: Predictor) -> Cell:
    mean = p.mean(data.spec.objective.readout)
    if isinstance(mean, str):
        return {"na": mean}
    mae = float(np.mean(np.abs(mean - data.observed(data.spec.objective.readout))))
    return {"value": mae, "text": f"{mae:.3g}"}


def counterfactual(data: HeldOut, p: Predictor) -> Cell:
    mean = p.mean(data.spec.objective.readout)
    if isinstance(mean, str):
        return {"na": mean}
    mae, sign = difference_scores(mean, data.observed(data.spec.objective.readout))
    return {"value": {"difference_mae": mae, "sign_agreement": sign}, "text": f"{mae:.3g}; sign {sign:.0%}"}


def calibration(data: HeldOut, p: Predictor) -> Cell:
    draws = p.readout(data.spec.objective.readout)
    if isinstance(draws, str):
        return {"na": draws}
    observed = torch.as_tensor(data.observed(data.spec.objective.readout))
    crps = crps_ensemble(draws, observed)
    if p.point:
        return {"value": {"coverage90": None, "crps": crps}, "text": f"cover n/a (a point); CRPS {crps:.3g}"}
    cover = interval_coverage(draws, observed, LEVEL)
    return {"value": {"coverage90": cover, "crps": crps}, "text": f"cover {cover:.0%}; CRPS {crps:.3g}"}


def planning(data: HeldOut, p: Predictor) -> Cell:
    spec = data.spec
    mean = p.mean(spec.objective.readout)
    if isinstance(mean, str):
        return {"na": mean}
    utility = spec.objective.utility(mean)
    observed = spec.objective.utility(data.observed(spec.objective.readout))
    safe_seen = np.array([not observed_unsafe(spec, o) for _, o in data.test])
    got = menu_regret(utility, _predicted_safe(data, p), observed, safe_seen, _menu_size(data), MENUS, spec.seed)
    if got is None:
        return {"na": "no held-out experiment was safe"}
    regret, unsafe, menus = got
    text = f"{regret:.3g}" + (f"; {unsafe:.0%} unsafe" if spec.safety else "")
    return {"value": {"regret": regret, "unsafe_picks": unsafe, "menus": menus}, "text": text}


def _menu_size(data: HeldOut) -> int:
    return min(MENU_SIZE, max(2, len(data.test) // 2))


def _predicted_safe(data: HeldOut, p: Predictor) -> np.ndarray:
    """(n,) bool: P(event) <= the limit's max_probability for every safety limit the predictor can judge;
    a limit it cannot judge is not held against it."""
    safe = np.ones(len(data.test), dtype=bool)
    for limit in data.spec.safety:
        event = _event(data, p, limit)
        if event is not None:
            safe &= event.clamp(0.0, 1.0).mean(0).numpy() <= limit.max_probability
    return safe


def _event(data: HeldOut, p: Predictor, limit: SafetyLimit) -> Tensor | None:
    """Samples (S, n) of the limit's event: its event readout, else the series or readout it watches."""
    event = p.readout(unsafe_readout_name(limit))
    if not isinstance(event, str):
        return event
    if limit.readout is not None and not isinstance(watched := p.readout(limit.readout), str):
        return limit_event(limit, watched, over_last=False)
    if limit.series in data.series and not isinstance(series := p.series_on(data), str):
        return limit_event(limit, series[..., data.series.index(limit.series)])
    return None


DIMENSIONS: dict[str, Callable[[HeldOut, Predictor], Cell]] = {
    "observational realism": realism,
    "state consistency": consistency,
    "temporal coherence": temporal,
    "interventional accuracy": accuracy,
    "counterfactual validity": counterfactual,
    "calibration": calibration,
    "planning utility": planning,
}


def score(data: HeldOut, predictors: list[Predictor]) -> dict[str, dict[str, Cell]]:
    """Every dimension's cell for every predictor: dimension -> predictor label -> cell."""
    return {name: {p.label: fn(data, p) for p in predictors} for name, fn in DIMENSIONS.items()}


def definitions(data: HeldOut) -> dict[str, str]:
    """Each dimension's operational definition, worded for this world's data."""
    spec, n = data.spec, len(data.test)
    y = spec.objective.readout
    if data.realism_readouts:
        compared = f"readouts ({', '.join(data.realism_readouts)})"
    else:
        compared = f"trajectories ({', '.join(data.series)} on the {len(data.grid)}-point grid)"
    times = " / ".join(f"{data.grid[i] - data.grid[0]:g}" for i in _horizon_index(data.grid)) if len(data.grid) else ""
    fractions = " / ".join(f"{h:.0%}" for h in HORIZONS)
    bounds = "; ".join(b.describe() for b in data.constraints) or "none declared"
    return {
        "observational realism": f"energy distance between the sampled {compared} of the {n} held-out interventions, "
        "pooled, and the observed ones; each scaled by its training sd (0: same distribution)",
        "state consistency": f"share of sampled outcomes (held-out experiments x draws) breaking a declared bound: {bounds}",
        "temporal coherence": "|median prediction - observed| / training sd, mean over held-out experiments and series, "
        + f"at {fractions} of the experiment"
        + (f" (t = {times})" if times else ""),
        "interventional accuracy": f"mean absolute error of the predicted mean {y} on {n} held-out interventions, none seen in training",
        "counterfactual validity": f"over the {n * (n - 1) // 2} pairs of held-out experiments (same starting state, two "
        f"interventions): mean absolute error of the predicted difference in {y}; share of pairs with the observed sign",
        "calibration": f"{y}: share of held-out results inside the central 90% predictive interval; CRPS "
        "(a point forecast's CRPS is its absolute error)",
        "planning utility": f"mean regret over {MENUS} random menus of {_menu_size(data)} held-out interventions: the best "
        f"observed {y} ({spec.objective.direction}) among the menu's safe ones minus that of the pick (the best predicted, "
        "among those predicted safe; an unsafe pick counts as the menu's worst safe one)",
    }
