"""The world model as a BoTorch `EnsembleModel`: candidates in the unit cube -> glucose trajectory samples.

`forward(X)` returns `batch x S x n x T`: S = members * particles rolled-out trajectories
(member-major: sample s belongs to member s // particles), T time points from t=0. BoTorch then
gives `posterior(X)` as an `EnsemblePosterior` whose outputs are the T glucose values. Samples are
seeded and shared across candidates (common random numbers), so the same X gives the same samples.
Rollouts do not carry gradients (a regimen becomes doses through numpy), so optimise acquisitions
over a discrete candidate set (`optimize_acqf_discrete`).
"""

from __future__ import annotations

import torch
from botorch.models.ensemble import EnsembleModel
from torch import Tensor

from wetloop.campaign import CampaignSpec
from wetloop.worldmodel import GaussianEnsemble, decode, torch_threads

from ._features import Featuriser, imagined_days, schedules
from ._rollout import draw_noise, rollout

__all__ = ["TrajectoryEnsembleModel"]


class TrajectoryEnsembleModel(EnsembleModel):
    """Glucose trajectory samples of regimens. forward: X (batch, n, d) in [0, 1] -> (batch, S, n, T) mg/dL.

    Attributes: `members` (M), `particles` (P), `times_min` (T floats, minutes from the start).
    """

    noise: Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(
        self,
        spec: CampaignSpec,
        ensemble: GaussianEnsemble,
        featuriser: Featuriser,
        *,
        y0: tuple[float, float],
        steps: int,
        particles: int,
        seed: int,
        chunk: int = 128,
        threads: int | None = 1,
        rollout_noise: float | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.ensemble, self.featuriser = spec, ensemble, featuriser
        self.members, self.particles = ensemble.members, particles
        self._y0, self._chunk, self._threads = y0, chunk, threads
        self.times_min: tuple[float, ...] = tuple(featuriser.dt * i for i in range(steps + 1))
        self._num_outputs = steps + 1
        noise = draw_noise(self.members, particles, steps, seed)
        scale = rollout_noise if rollout_noise is not None else (0.0 if spec.world_options.get("days") is not None else 1.0)
        noise[..., 1:] *= scale  # the initial state keeps its spread
        self.register_buffer("noise", noise)
        self.days = imagined_days(spec, particles, seed)  # particle p lives day p, in every member
        self._memo: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    @property
    def samples(self) -> int:
        """S = members * particles."""
        return self.members * self.particles

    def forward(self, X: Tensor) -> Tensor:
        """X (batch..., n, d) in the unit cube -> glucose samples (batch..., S, n, T) in mg/dL, X's dtype."""
        flat = X.reshape(-1, X.shape[-1])
        out = self._rollout(flat)
        return out.view(self.samples, *X.shape[:-1], len(self.times_min)).movedim(0, -3).to(X)

    def _rollout(self, flat: Tensor) -> Tensor:
        """flat (N, d) -> glucose (S, N, T). The last call's result is kept: rollouts are deterministic
        (common random numbers), so when the planner asks for the menu that the loop's `simulate` step
        has just rolled out, it gets the same samples without a second rollout."""
        # Tensor._version counts in-place writes: a weight changed in place invalidates the memo.
        weights = tuple(p._version for p in self.ensemble.parameters())
        memo = self._memo
        if memo is not None and memo[0] == weights and memo[1].shape == flat.shape and torch.equal(memo[1], flat):
            return memo[2]
        with torch_threads(self._threads):
            parts = [self._simulate(flat[i : i + self._chunk]) for i in range(0, len(flat), self._chunk)]
        out = torch.cat(parts, dim=1) if parts else flat.new_zeros(self.samples, 0, len(self.times_min))
        self._memo = (weights, flat.detach().clone(), out)
        return out

    def _simulate(self, X: Tensor) -> Tensor:
        """X (n, d) -> glucose (S, n, T) float32."""
        feat = self.featuriser
        insulin, carbs, corrections = schedules(self.spec, decode(self.spec, X), feat.dt, self.days)
        n, p, k = insulin.shape
        flat_carbs = carbs[None].expand(n, p, k).reshape(n * p, k)
        inputs = feat.input_features(insulin.reshape(n * p, k), flat_carbs).view(n, p, k, -1)[:, :, : self._num_outputs - 1]
        states = rollout(self.ensemble, feat, inputs, self._y0, self.noise, corrections)  # (M, P, n, T)
        return feat.to_glucose(states).reshape(self.samples, len(X), -1)
