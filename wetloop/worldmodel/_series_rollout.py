"""Particle rollouts of the series ensemble, and the series model as a BoTorch `EnsembleModel`.

Each particle stays with one member for the whole experiment (PETS' trajectory sampling): the spread
between members is the model's disagreement, the spread within a member its predicted noise. The
noise (initial state and every step) is drawn once from the seed and shared by all candidates
(common random numbers), so the same X always gives the same samples and candidates are compared
on the same scenarios. States are clamped each step to the training range widened by a margin: an
unclamped random walk in log space could wander where no data ever was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from botorch.models.ensemble import EnsembleModel
from torch import Tensor

from ._ensemble import GaussianEnsemble
from ._series_data import StateTransform

__all__ = ["Dynamics", "SeriesEnsembleModel", "rollout"]


@dataclass(frozen=True)
class Dynamics:
    """A fitted series ensemble with what a rollout needs. Shapes: z0_mean, z0_std, z_low, z_high (n_series,)."""

    ensemble: GaussianEnsemble
    transform: StateTransform
    z0_mean: Tensor
    z0_std: Tensor
    z_low: Tensor
    z_high: Tensor

    @property
    def n_series(self) -> int:
        return len(self.z0_mean)


def draw_noise(members: int, particles: int, steps: int, n_series: int, seed: int) -> Tensor:
    """Standard normal draws for the initial state and every step. Shape (M, P, K+1, n_series)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(members, particles, steps + 1, n_series, generator=g)


def _input_part(ens: GaussianEnsemble, s: int, u: Tensor) -> Tensor:
    """First-layer pre-activation of the known inputs, all steps at once: u (n, K, C) -> (M, n, K, hidden)."""
    us = (u.float() - ens.x_mean[s:]) / ens.x_std[s:]
    layer = ens.first_layer
    return torch.einsum("nkc,mch->mnkh", us, layer.weight[:, s:]) + layer.bias[:, None]


@torch.no_grad()
def rollout(dyn: Dynamics, u: Tensor, noise: Tensor) -> Tensor:
    """Roll n candidates forward with P particles per member, from the training initial state.

    Shapes: u (n, K, C) raw inputs; noise (M, P, K+1, n_series). Returns states (M, P, n, K+1, n_series).
    """
    ens, s = dyn.ensemble, dyn.n_series
    m, p, n, k = ens.members, noise.shape[1], u.shape[0], u.shape[1]
    pre_in = _input_part(ens, s, u)
    low, high = dyn.z_low.float(), dyn.z_high.float()
    z = (dyn.z0_mean.float() + dyn.z0_std.float() * noise[:, None, :, 0]).expand(m, n, p, s).clamp(low, high)
    states = [z]
    for step in range(k):
        zs = ((z - ens.x_mean[:s]) / ens.x_std[:s]).reshape(m, n * p, s)
        pre = torch.bmm(zs, ens.first_layer.weight[:, :s]).view(m, n, p, -1) + pre_in[:, :, step, None]
        mean, logvar = ens.trunk(pre.view(m, n * p, -1))
        eps = noise[:, None, :, step + 1].expand(m, n, p, s)
        delta = (mean.view(m, n, p, s) + (0.5 * logvar.view(m, n, p, s)).exp() * eps) * ens.y_std + ens.y_mean
        z = (z + delta).clamp(low, high)
        states.append(z)
    return torch.stack(states, dim=3).transpose(1, 2)  # (M, P, n, K+1, s)


class SeriesEnsembleModel(EnsembleModel):
    """Series samples of candidates. forward: X (batch..., q, d) encoded -> (batch..., S, q, n_series * T),
    physical units, series-major (all T times of series 0, then series 1, ...).

    `inputs` maps encoded X (N, d) to step inputs (N, K, C) (through the world's `inputs` where it has
    one). Attributes: `members` (M), `particles` (P), S = M * P member-major; `grid_min` (T times);
    `times_min` (the grid once per series: one time per output, as the planner's shape check counts outputs).
    """

    noise: Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(
        self, dynamics: Dynamics, inputs: Callable[[Tensor], Tensor], grid_min: tuple[float, ...], particles: int, seed: int
    ) -> None:
        super().__init__()
        self.dynamics, self.inputs = dynamics, inputs
        self.members, self.particles = dynamics.ensemble.members, particles
        self.grid_min = grid_min
        self.times_min: tuple[float, ...] = grid_min * dynamics.n_series
        self._num_outputs = len(self.times_min)
        self.register_buffer("noise", draw_noise(self.members, particles, len(grid_min) - 1, dynamics.n_series, seed))

    def forward(self, X: Tensor) -> Tensor:
        """X (batch..., q, d) -> (batch..., S, q, n_series * T), X's dtype."""
        flat = X.reshape(-1, X.shape[-1])
        z = rollout(self.dynamics, self.inputs(flat), self.noise)  # (M, P, N, T, s)
        x = self.dynamics.transform.to_series(z.double())
        m, p, n, t, s = x.shape
        out = x.permute(0, 1, 2, 4, 3).reshape(m * p, n, s * t)
        return out.view(m * p, *X.shape[:-1], s * t).movedim(0, -3).to(X)
