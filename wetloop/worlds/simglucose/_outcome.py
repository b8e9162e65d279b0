"""Readouts of sampled glucose trajectories, in torch, with exactly `glucose_readouts`' meaning (`_readouts.py`).

The outcome model works on whatever grid it is given; the planner hands it the world model's
(15-min) samples, which can miss a dip shorter than a step that the lab's 3-min grid would catch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, SafetyLimit, unsafe_readout_name

from ._readouts import glucose_range

__all__ = ["OutcomeModel"]


class OutcomeModel:
    """Turns glucose samples (..., T) in mg/dL into readouts (...) named as the lab names them."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.range = glucose_range(spec)
        self.limits: tuple[SafetyLimit, ...] = tuple(s for s in spec.safety if s.series == "glucose")

    @property
    def names(self) -> tuple[str, ...]:
        """Every readout name `readouts` returns, in order."""
        return ("time_in_range", "min_glucose", "mean_glucose", "max_glucose") + tuple(
            unsafe_readout_name(limit) for limit in self.limits
        )

    def readouts(self, glucose: Tensor) -> dict[str, Tensor]:
        """time_in_range, min/mean/max glucose, and 1.0/0.0 per glucose safety limit. Shapes: (..., T) -> (...)."""
        low, high = self.range
        out = {
            "time_in_range": ((glucose >= low) & (glucose <= high)).to(glucose.dtype).mean(-1),
            "min_glucose": glucose.amin(-1),
            "mean_glucose": glucose.mean(-1),
            "max_glucose": glucose.amax(-1),
        }
        for limit in self.limits:
            out[unsafe_readout_name(limit)] = _crossed(glucose, limit).any(-1).to(glucose.dtype)
        return out

    __call__ = readouts

    def utility(self, glucose: Tensor) -> Tensor:
        """The spec's objective as a number to maximise, per sample. Shapes: (..., T) -> (...)."""
        objective = self.spec.objective
        return objective.utility(self.readouts(glucose)[objective.readout])  # works on tensors too

    def p_unsafe(self, samples: Tensor) -> dict[str, Tensor]:
        """P(any glucose below the limit) per candidate, keyed by `SafetyLimit.name`.

        Shapes: samples (b, S, T) -> each value (b,), the fraction of the S samples with an event.
        """
        return {limit.name: _crossed(samples, limit).any(-1).to(samples.dtype).mean(-1) for limit in self.limits}


def _crossed(glucose: Tensor, limit: SafetyLimit) -> Tensor:
    """Where glucose is below the limit's `below` or above its `above`. Shapes: (..., T) -> (..., T) bool."""
    low = glucose < limit.below if limit.below is not None else torch.zeros_like(glucose, dtype=torch.bool)
    return low | (glucose > limit.above) if limit.above is not None else low
