"""Particle rollouts of candidate regimens through the ensemble (PETS' trajectory sampling).

Each particle stays with one member for the whole day, so the spread between members' particles is
the model's epistemic disagreement and the spread within a member is its predicted noise. Particle p
lives day p of the days the model imagines (drawn from the spec's distribution of days; all equal
when the spec fixes one day), so a regimen is scored over many days and every candidate over the
same ones. Every step draws the next glucose from the member's Gaussian and clamps it to the
physical range (default [10, 600] mg/dL, the limits at which the simulator itself stops), because
an unclamped log-glucose random walk could wander where no data ever was.

Correction boluses depend on glucose, so they are decided during the rollout: at a day's announced
meal, glucose above the threshold adds (glucose - target) / factor units, and those units enter the
insulin windows of the following steps. Insulin features are linear in the doses, so a correction
adds its units times the first-layer weights of the window its age falls in.

The noise (initial glucose and per-step draws) is shared by all candidates: common random numbers,
so two candidates are compared on the same particle scenarios and a candidate's samples do not
depend on which other candidates share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from wetloop.worldmodel import GaussianEnsemble

if TYPE_CHECKING:
    from ._features import Featuriser

__all__ = ["rollout", "draw_noise", "Corrections"]


@dataclass(frozen=True)
class Corrections:
    """Where and how correction boluses happen. Shapes: `at` (P, K) bool, the steps of each imagined
    day with an announced meal; `factor` (n,) mg/dL per U per candidate (inf: no correction)."""

    at: Tensor
    factor: Tensor
    target: float
    above: float


def draw_noise(members: int, particles: int, steps: int, seed: int) -> Tensor:
    """Standard normal draws for the initial state and every step. Shape (M, P, K+1); [..., 0] is for t=0."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(members, particles, steps + 1, generator=g)


@torch.no_grad()
def rollout(
    ens: GaussianEnsemble,
    feat: Featuriser,
    inputs: Tensor,
    y0: tuple[float, float],
    noise: Tensor,
    corrections: Corrections | None = None,
) -> Tensor:
    """Roll n candidates forward with P particles per member.

    Shapes: inputs (n, P, K, n_inputs) window sums from `Featuriser.input_features` (particle p on
    imagined day p); `y0` the (mean, std) of the initial state; noise (M, P, K+1) from `draw_noise`.
    Returns states (M, P, n, K+1).
    """
    m, n, p, k = ens.members, inputs.shape[0], inputs.shape[1], inputs.shape[2]
    s = feat.n_state
    u = (inputs.float() - ens.x_mean[s:]) / ens.x_std[s:]  # (n, P, K, w)
    layer = ens.first_layer
    w_in = layer.weight[:, s:]  # (M, w, H)
    low, high = feat.state_bounds()
    start = (y0[0] + y0[1] * noise[:, None, :, 0]).expand(m, n, p).clamp(low, high)
    hist = start[..., None].repeat(1, 1, 1, feat.lags + 1)  # (M, n, P, lags+1): a steady start
    states = [start]
    active: list[tuple[int, Tensor]] = []  # (step, units (M, n, P)) of corrections given so far
    for step in range(k):
        pre_in = torch.einsum("npw,mwh->mnph", u[:, :, step], w_in) + layer.bias[:, None]  # (M, n, P, H)
        if corrections is not None:
            given = _correction(feat, hist, corrections, step)
            if given is not None:
                active.append((step, given))
            active = [(j, c) for j, c in active if step - j < feat.insulin_depth]
            pre_in = pre_in + _correction_input(ens, feat, active, step)
        nxt = _step(ens, feat, hist, pre_in, noise[:, None, :, step + 1]).clamp(low, high)
        hist = torch.cat([hist[..., 1:], nxt[..., None]], dim=-1)
        states.append(nxt)
    return torch.stack(states, dim=-1).transpose(1, 2)  # (M, P, n, K+1)


def _correction(feat: Featuriser, hist: Tensor, c: Corrections, step: int) -> Tensor | None:
    """Units of correction given at `step` (M, n, P), or None when no imagined day has a meal then."""
    at = c.at[:, step]
    if not bool(at.any()):
        return None
    glucose = feat.to_glucose(hist[..., -1])  # (M, n, P)
    units = (glucose - c.target) / c.factor[None, :, None]
    return torch.where(at[None, None, :] & (glucose > c.above), units, torch.zeros_like(units))


def _correction_input(ens: GaussianEnsemble, feat: Featuriser, active: list[tuple[int, Tensor]], step: int) -> Tensor | int:
    """First-layer pre-activation added by the corrections still in the insulin windows at `step`."""
    if not active:
        return 0
    s = feat.n_state
    weight = ens.first_layer.weight  # (M, d_in, H)
    out: Tensor | int = 0
    for j, units in active:
        w = feat.insulin_window(step - j)
        scale = weight[:, s + w] / ens.x_std[s + w]  # (M, H)
        out = out + units[..., None] * scale[:, None, None, :]
    return out


def _step(ens: GaussianEnsemble, feat: Featuriser, hist: Tensor, pre_in: Tensor, noise: Tensor) -> Tensor:
    """One draw of the next state.

    Shapes: hist (M, n, P, lags+1), pre_in (M, n, P, hidden), noise (M, 1, P) -> (M, n, P).
    """
    m, n, p, _ = hist.shape
    s = feat.n_state
    x = (feat.state_features(hist) - ens.x_mean[:s]) / ens.x_std[:s]
    pre = torch.bmm(x.reshape(m, n * p, s), ens.first_layer.weight[:, :s]).view(m, n, p, -1) + pre_in
    mean, logvar = ens.trunk(pre.view(m, n * p, -1))
    delta = mean.view(m, n, p) * ens.y_std + ens.y_mean
    sd = (0.5 * logvar.view(m, n, p)).exp() * ens.y_std
    return hist[..., -1] + delta + sd * noise
