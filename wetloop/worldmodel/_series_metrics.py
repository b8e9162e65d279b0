"""Calibration of the series model on (held-out) experiments, per series, in physical units.

Open loop: the whole experiment rolled out from the start, as the planner sees it, against what was
observed on the model grid; its baseline is the initial value held (persistence from t=0). One step:
each step predicted from the observed state (teacher forcing), with the persistence baseline
x[k+1] = x[k]. The CRPS of a point forecast is its absolute error, so a CRPS below the persistence
MAE means the samples beat persistence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from wetloop.campaign import Intervention, Observation

from ._config import torch_threads
from ._metrics import crps_ensemble, interval_coverage
from ._series_data import input_channels, on_grid
from ._series_step import step

if TYPE_CHECKING:
    from ._series import SeriesWorldModel

__all__ = ["SeriesCalibration", "SeriesScores", "series_calibration"]


class SeriesScores(BaseModel):
    """One series' mean scores over experiments (units of the series; coverage a fraction at `level`)."""

    model_config = ConfigDict(frozen=True)

    open_loop_crps: float
    open_loop_coverage: float
    open_loop_median_mae: float
    initial_persistence_mae: float
    one_step_crps: float
    one_step_coverage: float
    persistence_mae: float


class SeriesCalibration(BaseModel):
    """Scores of a series model on `n_experiments` experiments, per series."""

    model_config = ConfigDict(frozen=True)

    n_experiments: int
    level: float
    series: dict[str, SeriesScores]

    def summary(self) -> str:
        parts = [
            f"{k}: open-loop CRPS {s.open_loop_crps:.3g} vs persistence {s.initial_persistence_mae:.3g}, "
            f"{self.level:.0%} coverage {s.open_loop_coverage:.2f}"
            for k, s in self.series.items()
        ]
        return f"{self.n_experiments} experiment(s): " + "; ".join(parts)


def series_calibration(
    model: SeriesWorldModel, data: Sequence[tuple[Intervention, Observation]], level: float = 0.9
) -> SeriesCalibration:
    """Score a fitted series model on "ok" experiments with trajectories (usually held out); means over experiments."""
    pairs = model._usable(data)
    if not pairs:
        raise ValueError("series_calibration needs at least one 'ok' observation with a trajectory of 2+ times")
    with torch_threads(model.config.threads), torch.no_grad():
        rows = np.array([_scores(model, iv, obs, level) for iv, obs in pairs])  # (n, n_series, 7)
    mean = rows.mean(axis=0)
    fields = list(SeriesScores.model_fields)
    series = {name: SeriesScores(**dict(zip(fields, map(float, mean[i])))) for i, name in enumerate(model.series_names)}
    return SeriesCalibration(n_experiments=len(pairs), level=level, series=series)


def _scores(model: SeriesWorldModel, iv: Intervention, obs: Observation, level: float) -> list[list[float]]:
    """Per series, the seven `SeriesScores` fields for one experiment."""
    grid = model._fitted_grid("score its calibration")
    observed = torch.as_tensor(on_grid(obs, model.series, grid), dtype=torch.float64)  # (T, s)
    loop = model.sample([iv])[0]  # (S, s*T)
    step = one_step_samples(model, iv, observed)  # (S, K, s)
    out = []
    for i, name in enumerate(model.series_names):
        y, samples, one = observed[:, i], model.outcome.series_values(loop, name), step[..., i]
        out.append(
            [
                crps_ensemble(samples, y),
                interval_coverage(samples, y, level),
                float((samples.median(0).values - y).abs().mean()),
                float((y - y[0]).abs().mean()),
                crps_ensemble(one, y[1:]),
                interval_coverage(one, y[1:], level),
                float((y[1:] - y[:-1]).abs().mean()),
            ]
        )
    return out


def one_step_samples(model: SeriesWorldModel, iv: Intervention, observed: Tensor) -> Tensor:
    """Samples of each next value from the observed state. Shapes: observed (T, s) physical -> (S, K, s), S = M * P."""
    dyn, cfg = model._require("forecast"), model.config
    ens = dyn.ensemble
    u = input_channels(model.spec, model.inputs, [iv], model._fitted_grid("forecast"))[0]  # (K, C)
    z = dyn.transform.to_state(observed)
    m = ens.members
    mean, logvar = step(ens, dyn.kind, z[:-1].float().expand(m, -1, -1), u.float().expand(m, -1, -1), dyn.substeps)
    g = torch.Generator().manual_seed(cfg.seed)
    eps = torch.randn(m, cfg.particles, *mean.shape[1:], generator=g)
    delta = mean[:, None] + (0.5 * logvar[:, None]).exp() * eps  # (M, P, K, s)
    z_next = (z[:-1] + delta.double()).clamp(dyn.z_low, dyn.z_high)
    return dyn.transform.to_series(z_next).reshape(-1, *z_next.shape[2:])
