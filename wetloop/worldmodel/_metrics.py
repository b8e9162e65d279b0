"""Calibration scores of sampled forecasts: central-interval coverage and CRPS (any world model)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["interval_coverage", "crps_ensemble"]


def interval_coverage(samples: Tensor, observed: Tensor, level: float = 0.9) -> float:
    """Fraction of time points whose observation lies in the samples' central `level` interval.

    Shapes: samples (S, T), observed (T,).
    """
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lower, upper = torch.quantile(samples.double(), q, dim=0)
    obs = observed.double()
    return float(((obs >= lower) & (obs <= upper)).double().mean())


def crps_ensemble(samples: Tensor, observed: Tensor) -> float:
    """Mean over time of the energy-form CRPS, E|X - y| - 0.5 E|X - X'|, of the sample distribution.

    Shapes: samples (S, T), observed (T,). Uses the sorted-sample identity for E|X - X'| (O(S log S)).
    """
    x, y = samples.double(), observed.double()
    s = x.shape[0]
    first = (x - y).abs().mean(0)
    ranks = 2 * torch.arange(1, s + 1, dtype=torch.float64) - s - 1  # weights of sorted samples
    spread = 2.0 * (ranks[:, None] * x.sort(dim=0).values).sum(0) / s**2  # E|X - X'|
    return float((first - 0.5 * spread).mean())
