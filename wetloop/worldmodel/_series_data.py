"""From observations to the series model's arrays: one time grid, a state transform, input channels.

All experiments of a campaign share the grid of the first usable observation; another grid is
resampled onto it by linear interpolation (held constant beyond its ends). The state is the declared
series, each as log(x + eps) when its physical lower bound is 0 (concentrations: changes are
relative, and a rollout never goes below zero) or as is otherwise. Inputs per step are the world's
channels (`World.inputs`), or the encoded intervention held constant, plus the elapsed fraction of
the experiment (so a drift with time is learnable without an input that causes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, Series

from ._generic import encode_interventions, require_encodable
from .errors import ObservationFormatError, WorldModelError

__all__ = ["InputsFn", "StateTransform", "elapsed_fraction", "input_channels", "on_grid"]

InputsFn = Callable[[CampaignSpec, Sequence[Intervention], Sequence[float]], Any]


def on_grid(obs: Observation, series: Sequence[Series], grid: np.ndarray) -> np.ndarray:
    """The observation's series resampled onto `grid`. Shape (T, n_series) float64; ObservationFormatError
    naming what is missing."""
    traj = obs.trajectory
    if traj is None or len(traj.times_min) == 0:
        raise ObservationFormatError(
            f"observation {obs.experiment_key} has no trajectory; the series model needs every declared series over time",
            observation=obs,
        )
    missing = [s.name for s in series if s.name not in traj.series]
    if missing:
        raise ObservationFormatError(
            f"observation {obs.experiment_key} lacks series {missing} (it has "
            f"{sorted(traj.series)}); the lab must report every declared series",
            observation=obs,
        )
    times = np.asarray(traj.times_min, dtype=float)
    if len(times) == len(grid) and np.allclose(times, grid):
        return np.stack([np.asarray(traj.series[s.name], dtype=float) for s in series], axis=-1)
    return np.stack([np.interp(grid, times, np.asarray(traj.series[s.name], dtype=float)) for s in series], axis=-1)


@dataclass(frozen=True)
class StateTransform:
    """Physical series values <-> model states, per series: log(x + eps) where `log`, else x.

    Shapes: `log`, `eps`, `lower`, `upper` (n_series,); `lower`/`upper` are the physical bounds
    (-inf/inf where none), applied to every value the model returns.
    """

    log: Tensor
    eps: Tensor
    lower: Tensor
    upper: Tensor

    @classmethod
    def fit(cls, series: Sequence[Series], values: np.ndarray, rel_eps: float) -> StateTransform:
        """From the declarations and training values (N, n_series): eps = rel_eps x the series' largest value."""
        v = torch.as_tensor(values, dtype=torch.float64)
        scale = v.abs().amax(0) if len(v) else torch.ones(len(series), dtype=torch.float64)
        eps = rel_eps * torch.where(scale > 0, scale, torch.ones_like(scale))
        log = torch.tensor([s.lower == 0.0 for s in series])
        lower = torch.tensor([-np.inf if s.lower is None else s.lower for s in series], dtype=torch.float64)
        upper = torch.tensor([np.inf if s.upper is None else s.upper for s in series], dtype=torch.float64)
        return cls(log, eps, lower, upper)

    def to_state(self, x: Tensor) -> Tensor:
        """(..., n_series) physical -> states, float64."""
        x = x.double().clamp(self.lower, self.upper)
        return torch.where(self.log, torch.log(x.clamp_min(0.0) + self.eps), x)

    def to_series(self, z: Tensor) -> Tensor:
        """(..., n_series) states -> physical values within the bounds, z's dtype."""
        zd = z.double()
        x = torch.where(self.log, torch.exp(zd.clamp(max=700.0)) - self.eps, zd)
        return x.clamp(self.lower, self.upper).to(z.dtype)

    def as_dict(self) -> dict[str, Tensor]:
        return {"log": self.log, "eps": self.eps, "lower": self.lower, "upper": self.upper}


def input_channels(
    spec: CampaignSpec,
    inputs: InputsFn | None,
    interventions: Sequence[Intervention],
    grid: np.ndarray,
) -> Tensor:
    """Inputs of each step: the world's channels (or the encoded intervention, constant) and the elapsed
    fraction of the experiment at the step's start. Shape (n, K, C + 1) float64, K = len(grid) - 1."""
    n, k = len(interventions), len(grid) - 1
    raw = None if inputs is None else inputs(spec, interventions, [float(t) for t in grid])
    if raw is None:  # the world's inputs may decline (World.inputs returns None by default)
        require_encodable(spec, "series world model (the world gives no inputs, so it holds the encoded intervention)")
        u = encode_interventions(spec, interventions)[:, None, :].expand(n, k, -1)
    else:
        u = torch.as_tensor(np.asarray(raw, dtype=float), dtype=torch.float64)
        if u.ndim != 3 or u.shape[:2] != (n, k):
            raise WorldModelError(
                f"the world's inputs(...) returned shape {tuple(u.shape)}; expected (n, K, C) = "
                f"({n}, {k}, C) for {n} interventions and {k} intervals between {len(grid)} times"
            )
    return torch.cat([u, elapsed_fraction(grid, n)], dim=-1)


def elapsed_fraction(grid: np.ndarray, n: int) -> Tensor:
    """The elapsed fraction of the experiment at each step's start, for n candidates. Shape (n, K, 1) float64."""
    span = float(grid[-1] - grid[0]) or 1.0
    frac = torch.as_tensor((grid[:-1] - grid[0]) / span, dtype=torch.float64)
    return frac[None, :, None].expand(n, -1, 1)
