"""Multi-step training of the series ensemble: each member's mean path unrolled over windows of the
observed experiments, so the errors a long open-loop rollout compounds are what the loss sees.

After the one-step fit (`train_ensemble`: beta-NLL, which also learns the noise), every member is
fine-tuned on windows of its own bootstrap of experiments: from the observed state at a random start,
its mean steps are chained over H intervals under the known inputs, and the squared error of every
predicted state (in the state's standardised units) is the loss, plus the one-step beta-NLL of the
window's first step so the noise head stays fitted. H grows from 1 to `horizon` over the first half
of the steps (a teacher-forcing curriculum: short windows first, when the chained path is still poor).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._generic import RobustEnsemble
from ._series_step import step

__all__ = ["train_rollouts"]


def train_rollouts(
    ens: RobustEnsemble,
    z: Tensor,
    u: Tensor,
    *,
    kind: str,
    horizon: int,
    steps: int,
    batch: int,
    lr: float,
    weight_decay: float,
    bounds: tuple[Tensor, Tensor],
    substeps: int = 2,
    seed: int = 0,
) -> list[float]:
    """Fine-tune every member on chained windows; returns the loss of each step. Shapes: z (n, T, s)
    states, u (n, K, C) inputs, bounds (s,) each (the rollout clamp). The ensemble's normaliser is kept."""
    g = torch.Generator().manual_seed(seed + 2)
    n, t, s = z.shape
    k, m = t - 1, ens.members
    h_max = max(1, min(horizon, k))
    counts = torch.zeros(m, n).scatter_add_(1, torch.randint(n, (m, n), generator=g), torch.ones(m, n))
    scale = ens.x_std[:s]
    low, high = (b.float() for b in bounds)
    opt = torch.optim.AdamW(ens.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    ens.train()
    losses = []
    for it in range(steps):
        h = max(1, min(h_max, math.ceil(h_max * (it + 1) / max(1, steps // 2))))
        idx = torch.multinomial(counts, batch, replacement=True, generator=g)  # (M, B) experiments
        start = torch.randint(0, k - h + 1, (m, batch), generator=g)
        loss = _window_loss(ens, kind, z, u, idx, start, h, scale, low, high, substeps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ens.parameters(), 10.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    ens.eval()
    return losses


def _window_loss(
    ens: RobustEnsemble,
    kind: str,
    z: Tensor,
    u: Tensor,
    idx: Tensor,
    start: Tensor,
    h: int,
    scale: Tensor,
    low: Tensor,
    high: Tensor,
    substeps: int,
) -> Tensor:
    """Mean squared standardised error of an h-step chained mean path, plus the first step's beta-NLL."""
    zhat, path = z[idx, start], torch.zeros(())
    for j in range(h):
        target = z[idx, start + j + 1]
        delta, logvar = step(ens, kind, zhat, u[idx, start + j], substeps)
        if j == 0:
            nll = _beta_nll(ens, delta, logvar, target - zhat)
        zhat = (zhat + delta).clamp(low, high)
        path = path + ((zhat - target) / scale).pow(2).mean()
    return path / h + nll


def _beta_nll(ens: RobustEnsemble, delta: Tensor, logvar: Tensor, observed: Tensor) -> Tensor:
    """The one-step beta-NLL of `RobustEnsemble.loss`, in the target's standardised units."""
    lv = logvar - 2.0 * ens.y_std.log()
    err = (observed - delta) / ens.y_std
    weight = (ens.beta * lv.detach()).exp()
    return (weight * 0.5 * (err.pow(2) * (-lv).exp() + lv)).mean()
