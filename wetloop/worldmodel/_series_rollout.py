"""Particle rollouts of the series ensemble, and the series model as a BoTorch `EnsembleModel`.

Each particle stays with one member for the whole experiment (PETS' trajectory sampling): the spread
between members is the model's disagreement, the spread within a member its predicted noise. Where
that noise enters is `Dynamics.noise`: `process` adds each step's predicted noise to the state (a
random walk that compounds over the experiment: right for a stochastic system), `observation` rolls
each member's mean path from a drawn initial state and adds the predicted noise to each reported
value only (right for a deterministic system measured with noise, where the step-to-step scatter of
the data is measurement error: half the variance of a change between two noisy measurements). The
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
from ._series_step import step

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
    kind: str = "mlp"
    noise: str = "process"
    substeps: int = 2

    @property
    def n_series(self) -> int:
        return len(self.z0_mean)


def draw_noise(members: int, particles: int, steps: int, n_series: int, seed: int) -> Tensor:
    """Standard normal draws for the initial state and every step. Shape (M, P, K+1, n_series)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(members, particles, steps + 1, n_series, generator=g)


@torch.no_grad()
def rollout(dyn: Dynamics, u: Tensor, noise: Tensor) -> Tensor:
    """Roll n candidates forward with P particles per member, from the training initial state.

    Shapes: u (n, K, C) raw inputs; noise (M, P, K+1, n_series). Returns states (M, P, n, K+1, n_series).
    """
    ens, s = dyn.ensemble, dyn.n_series
    m, p, n, k = ens.members, noise.shape[1], u.shape[0], u.shape[1]
    low, high = dyn.z_low.float(), dyn.z_high.float()
    z = (dyn.z0_mean.float() + dyn.z0_std.float() * noise[:, None, :, 0]).expand(m, n, p, s).clamp(low, high)
    uf = u.float()[None, :, None].expand(m, n, p, k, -1).reshape(m, n * p, k, -1)
    states = [z]
    for i in range(k):
        delta, logvar = step(ens, dyn.kind, z.reshape(m, n * p, s), uf[:, :, i], dyn.substeps)
        eps = noise[:, None, :, i + 1].expand(m, n, p, s)
        sd = (0.5 * logvar.view(m, n, p, s)).exp()
        if dyn.noise == "process":
            z = (z + delta.view(m, n, p, s) + sd * eps).clamp(low, high)
            states.append(z)
        else:  # mean path; a change between two measurements carries the measurement variance twice
            z = (z + delta.view(m, n, p, s)).clamp(low, high)
            states.append((z + sd * eps * 0.5**0.5).clamp(low, high))
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
