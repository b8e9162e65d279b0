"""Particle rollouts of candidate regimens through the ensemble (PETS' trajectory sampling).

Each particle stays with one member for the whole day, so the spread between members' particles is
the model's epistemic disagreement and the spread within a member is its predicted noise. Every
step draws the next glucose from the member's Gaussian and clamps it to the physical range
(default [10, 600] mg/dL, the limits at which the simulator itself stops), because an unclamped
log-glucose random walk could wander where no data ever was.

The noise (initial glucose and per-step draws) is shared by all candidates: common random numbers,
so two candidates are compared on the same particle scenarios and a candidate's samples do not
depend on which other candidates share its batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wetloop.worldmodel import GaussianEnsemble

from ._features import Featuriser

__all__ = ["rollout", "draw_noise"]


def draw_noise(members: int, particles: int, steps: int, seed: int) -> Tensor:
    """Standard normal draws for the initial state and every step. Shape (M, P, K+1); [..., 0] is for t=0."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(members, particles, steps + 1, generator=g)


def _input_part(ens: GaussianEnsemble, feat: Featuriser, inputs: Tensor) -> Tensor:
    """First-layer pre-activation from the known inputs, for all steps at once.

    Shapes: inputs (n, K, n_inputs) raw -> (M, n, K, hidden), first layer bias included.
    """
    s = feat.n_state
    u = (inputs.float() - ens.x_mean[s:]) / ens.x_std[s:]
    layer = ens.first_layer
    return torch.einsum("nkw,mwh->mnkh", u, layer.weight[:, s:]) + layer.bias[:, None]


@torch.no_grad()
def rollout(ens: GaussianEnsemble, feat: Featuriser, inputs: Tensor, y0: tuple[float, float], noise: Tensor) -> Tensor:
    """Roll n candidates forward with P particles per member.

    Shapes: inputs (n, K, n_inputs) window sums from `Featuriser.input_features`; `y0` the (mean, std)
    of the initial state; noise (M, P, K+1) from `draw_noise`. Returns states (M, P, n, K+1).
    """
    m, p, n, k = ens.members, noise.shape[1], inputs.shape[0], inputs.shape[1]
    pre_in = _input_part(ens, feat, inputs)
    low, high = feat.state_bounds()
    start = (y0[0] + y0[1] * noise[:, None, :, 0]).expand(m, n, p).clamp(low, high)
    hist = start[..., None].repeat(1, 1, 1, feat.lags + 1)  # (M, n, P, lags+1): a steady start
    states = [start]
    for step in range(k):
        nxt = _step(ens, feat, hist, pre_in[:, :, step], noise[:, None, :, step + 1]).clamp(low, high)
        hist = torch.cat([hist[..., 1:], nxt[..., None]], dim=-1)
        states.append(nxt)
    return torch.stack(states, dim=-1).transpose(1, 2)  # (M, P, n, K+1)


def _step(ens: GaussianEnsemble, feat: Featuriser, hist: Tensor, pre_in: Tensor, noise: Tensor) -> Tensor:
    """One draw of the next state.

    Shapes: hist (M, n, P, lags+1), pre_in (M, n, hidden), noise (M, 1, P) -> (M, n, P).
    """
    m, n, p, _ = hist.shape
    s = feat.n_state
    x = (feat.state_features(hist) - ens.x_mean[:s]) / ens.x_std[:s]
    pre = torch.bmm(x.reshape(m, n * p, s), ens.first_layer.weight[:, :s]).view(m, n, p, -1) + pre_in[:, :, None]
    mean, logvar = ens.trunk(pre.view(m, n * p, -1))
    delta = mean.view(m, n, p) * ens.y_std + ens.y_mean
    sd = (0.5 * logvar.view(m, n, p)).exp() * ens.y_std
    return hist[..., -1] + delta + sd * noise
