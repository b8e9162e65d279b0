"""Calibration of the glucose world model: interval coverage, CRPS, and a persistence baseline.

One-step (dt-ahead) forecasts are made from the OBSERVED history (teacher forcing) and compared
with persistence (g[k+1] = g[k]; the CRPS of a point forecast is its absolute error). Open-loop
forecasts roll the whole day out from t=0 with no observation after the start, as the planner does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from wetloop.campaign import Intervention, Observation
from wetloop.worldmodel import crps_ensemble, interval_coverage, torch_threads

from ._features import day_from_pair

if TYPE_CHECKING:
    from ._model import TrajectoryWorldModel

__all__ = ["Forecast", "one_step_predictions", "open_loop_predictions", "CalibrationReport", "calibration_report"]


@dataclass(frozen=True)
class Forecast:
    """Forecast samples beside what happened. Shapes: samples (S, T), observed (T,), persistence (T,) or None."""

    times_min: tuple[float, ...]
    samples: Tensor
    observed: Tensor
    persistence: Tensor | None = None


def one_step_predictions(model: TrajectoryWorldModel, intervention: Intervention, observation: Observation) -> Forecast:
    """dt-ahead predictive samples of glucose at steps 1..K, each from the observed history up to k.

    Every member draws `particles` values from its Gaussian (seeded); `persistence` is g[k].
    """
    ens, feat = model._require("forecast"), model.featuriser
    day = day_from_pair(model.spec, intervention, observation, model.config.dt_min)
    x, _ = feat.transitions([day])
    with torch_threads(model.config.threads), torch.no_grad():
        mean, logvar = ens(ens.standardise_x(x).expand(ens.members, -1, -1))  # (M, K, 1)
    g = torch.Generator().manual_seed(model.config.seed)
    eps = torch.randn(ens.members, model.config.particles, len(x), generator=g)  # (M, P, K)
    delta = (mean[:, None, :, 0] + (0.5 * logvar[:, None, :, 0]).exp() * eps) * ens.y_std + ens.y_mean
    y_next = (x[:, 0] + delta).clamp(*feat.state_bounds())  # (M, P, K)
    glucose = torch.as_tensor(day.glucose, dtype=torch.float64)
    times = tuple(model.config.dt_min * (k + 1) for k in range(day.steps))
    return Forecast(times, feat.to_glucose(y_next).reshape(-1, day.steps).double(), glucose[1:], glucose[:-1])


def open_loop_predictions(
    model: TrajectoryWorldModel,
    intervention: Intervention,
    observation: Observation,
) -> Forecast:
    """The full-day rollout from t=0 (as the planner sees it) beside the observed day, on the model grid."""
    day = day_from_pair(model.spec, intervention, observation, model.config.dt_min)
    samples = model.sample([intervention])[0, :, : day.steps + 1].double()
    times = tuple(model.config.dt_min * k for k in range(day.steps + 1))
    return Forecast(times, samples, torch.as_tensor(day.glucose, dtype=torch.float64))


class CalibrationReport(BaseModel):
    """Mean scores over days (mg/dL for CRPS and MAE; coverage as a fraction at `level`)."""

    model_config = ConfigDict(frozen=True)

    n_days: int
    level: float
    clamped: bool
    one_step_crps: float
    persistence_mae: float
    one_step_coverage: float
    open_loop_crps: float
    open_loop_coverage: float
    open_loop_median_mae: float


def calibration_report(
    model: TrajectoryWorldModel,
    data: Sequence[tuple[Intervention, Observation]],
    level: float = 0.9,
    clamp_observed: bool = True,
) -> CalibrationReport:
    """Score the model on (usually held-out) days: one-step vs persistence, and open-loop; means over days.

    With `clamp_observed`, observed glucose is clamped to the model's physical range first: the
    simulator's numbers beyond its own stop limits (e.g. 0 mg/dL) are not something to predict.
    """
    rows = [
        _day_scores(model, iv, obs, level, clamp_observed)
        for iv, obs in data
        if obs.status == "ok" and obs.trajectory is not None
    ]
    if not rows:
        raise ValueError("calibration_report needs at least one 'ok' observation with a trajectory")
    m = np.mean(rows, axis=0)
    return CalibrationReport(
        n_days=len(rows),
        level=level,
        clamped=clamp_observed,
        one_step_crps=m[0],
        persistence_mae=m[1],
        one_step_coverage=m[2],
        open_loop_crps=m[3],
        open_loop_coverage=m[4],
        open_loop_median_mae=m[5],
    )


def _day_scores(
    model: TrajectoryWorldModel,
    iv: Intervention,
    obs: Observation,
    level: float,
    clamp: bool,
) -> list[float]:
    """One day's [one-step CRPS, persistence MAE, one-step coverage, open-loop CRPS, coverage, median MAE]."""
    one, loop = one_step_predictions(model, iv, obs), open_loop_predictions(model, iv, obs)
    if clamp:
        one, loop = _clamped(one, model.config.glucose_clamp), _clamped(loop, model.config.glucose_clamp)
    assert one.persistence is not None  # one-step forecasts carry their persistence baseline
    return [
        crps_ensemble(one.samples, one.observed),
        float((one.persistence - one.observed).abs().mean()),
        interval_coverage(one.samples, one.observed, level),
        crps_ensemble(loop.samples, loop.observed),
        interval_coverage(loop.samples, loop.observed, level),
        float((loop.samples.median(0).values - loop.observed).abs().mean()),
    ]


def _clamped(forecast: Forecast, bounds: tuple[float, float]) -> Forecast:
    persistence = None if forecast.persistence is None else forecast.persistence.clamp(*bounds)
    return Forecast(forecast.times_min, forecast.samples, forecast.observed.clamp(*bounds), persistence)
