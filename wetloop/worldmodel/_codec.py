"""Interventions <-> points of the unit cube, one coordinate per spec variable (log-scale aware)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention

__all__ = ["encode", "decode"]


def encode(spec: CampaignSpec, interventions: Sequence[Intervention]) -> Tensor:
    """Shape (n, d) float64, columns in the order of `spec.interventions`."""
    rows = [[v.to_unit(iv.number(v.name)) for v in spec.interventions] for iv in interventions]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(spec.interventions))


def decode(spec: CampaignSpec, X: Tensor) -> list[Intervention]:
    """Inverse of `encode`. Shape X (n, d); values are clipped to [0, 1] (an optimiser may overshoot)."""
    if X.ndim != 2 or X.shape[-1] != len(spec.interventions):
        raise ValueError(
            f"X must have shape (n, {len(spec.interventions)}) for variables {list(spec.variable_names)}, got {tuple(X.shape)}"
        )
    rows = X.detach().clamp(0.0, 1.0).double().tolist()
    return [Intervention(values={v.name: v.from_unit(u) for v, u in zip(spec.interventions, row)}) for row in rows]
