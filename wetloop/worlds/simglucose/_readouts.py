"""Readouts of a glucose trajectory, as the simglucose lab reports them and the world model must predict them.

These numpy definitions are the reference: the world model's torch outcome model (`_outcome.py`) is
tested against them on the same trajectories, and they equal the generic readouts the world declares
(`SimglucoseWorld.readouts`, computed by `campaign.computed_readouts`).
"""

from __future__ import annotations

import numpy as np

from wetloop.campaign import CampaignSpec, event_happened, unsafe_readout_name

__all__ = ["glucose_range", "glucose_readouts"]


def glucose_range(spec: CampaignSpec) -> tuple[float, float]:
    """The spec's target glucose range in mg/dL (`world_options.glucose_range`, default 70-180)."""
    low, high = spec.world_options.get("glucose_range", (70.0, 180.0))
    return float(low), float(high)


def glucose_readouts(glucose: np.ndarray, spec: CampaignSpec) -> dict[str, float]:
    """time_in_range (fraction of samples in the spec's range), min/mean/max glucose, and per
    safety limit on `glucose` an event readout that is 1.0 when any sample fell below its threshold.

    Shape: `glucose` is (T,), equally spaced samples in mg/dL.
    """
    g = np.asarray(glucose, dtype=float)
    low, high = glucose_range(spec)
    out = {
        "time_in_range": float(((g >= low) & (g <= high)).mean()),
        "min_glucose": float(g.min()),
        "mean_glucose": float(g.mean()),
        "max_glucose": float(g.max()),
    }
    for limit in spec.safety:
        if limit.series == "glucose":
            out[unsafe_readout_name(limit)] = float(event_happened(limit, g))
    return out
