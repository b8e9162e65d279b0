"""Readouts of world-model samples, in torch, with exactly `campaign.readout_value`'s meaning.

A generic world model's samples are one flat vector per draw (..., D), laid out as

    [series 0 at t_0..t_{T-1}, series 1 at t_0..t_{T-1}, ..., direct readout 0, direct readout 1, ...]

series-major on the model's time grid, then the scalar readouts the model predicts directly (a
scalar model has no series: D = number of direct readouts). `SampleOutcome.readouts` turns them
into every readout the planner asks for: the computed readouts of each modelled series, the direct
ones, and one 0/1 event readout per safety limit it can judge (`campaign.unsafe_readout_name`).
The numpy functions in `campaign._readouts` are the reference; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Readout, SafetyLimit, unsafe_readout_name

__all__ = ["SampleOutcome", "limit_event", "series_readout"]


def series_readout(readout: Readout, times_min: Tensor, values: Tensor) -> Tensor:
    """One computed readout of a series. Shapes: times_min (T,), values (..., T) -> (...), values' dtype."""
    stat, v = readout.stat, values
    if stat == "final":
        return v[..., -1]
    if stat in ("min", "max"):
        return v.amin(-1) if stat == "min" else v.amax(-1)
    if stat == "mean":
        return v.mean(-1)
    if stat == "auc":
        dt = torch.diff(times_min.to(v))
        return ((v[..., 1:] + v[..., :-1]) * dt).sum(-1) / 2.0  # an empty sum (T = 1) is 0, as in numpy
    return _fraction(readout, v)


def _fraction(readout: Readout, v: Tensor) -> Tensor:
    """time_in_range / time_above / time_below: the fraction of samples. Shapes: (..., T) -> (...)."""
    # the spec's validator guarantees each statistic its bounds (Readout._check_stat)
    if readout.stat == "time_in_range":
        assert readout.low is not None and readout.high is not None
        hit = (v >= readout.low) & (v <= readout.high)
    elif readout.stat == "time_above":
        assert readout.threshold is not None
        hit = v > readout.threshold
    elif readout.stat == "time_below":
        assert readout.threshold is not None
        hit = v < readout.threshold
    else:
        raise ValueError(f"readout {readout.name!r} has stat {readout.stat!r}, which is not computed from a series")
    return hit.to(v.dtype).mean(-1)


def limit_event(limit: SafetyLimit, values: Tensor, over_last: bool = True) -> Tensor:
    """1.0 where any value crossed the limit, else 0.0. Shapes: (..., T) -> (...) with `over_last`
    (a series), or (...) -> (...) without (one readout value)."""
    hit = torch.zeros_like(values, dtype=torch.bool)
    if limit.below is not None:
        hit = hit | (values < limit.below)
    if limit.above is not None:
        hit = hit | (values > limit.above)
    return (hit.any(-1) if over_last else hit).to(values.dtype)


class SampleOutcome:
    """Turns samples (..., D) in the layout of the module docstring into readouts (...), by name.

    `series` names the modelled series in sample order, `times_min` their grid (T,); `direct` names
    the readouts the model predicts itself, in sample order after the series. A direct readout that
    is a safety event (the lab reported it as 0/1) becomes 1.0 where the draw exceeds 0.5; a direct
    `binary` readout is clipped to [0, 1] so its mean over samples is a probability.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        readouts: Sequence[Readout],
        series: Sequence[str] = (),
        times_min: Sequence[float] = (),
        direct: Sequence[str] = (),
    ) -> None:
        self.spec, self.series, self.direct = spec, tuple(series), tuple(direct)
        self.times_min = torch.tensor(list(times_min), dtype=torch.float64)
        self.computed = tuple(r for r in readouts if r.series is not None and r.series in self.series)
        self.binary = {r.name for r in readouts if r.binary}
        self.events = {unsafe_readout_name(limit): limit for limit in spec.safety}
        self.width = len(self.series) * len(self.times_min) + len(self.direct)
        self.names = self._names()

    def _names(self) -> tuple[str, ...]:
        """Every readout `readouts` returns, in order: computed, direct, then judgeable events."""
        known = [r.name for r in self.computed] + [d for d in self.direct if d not in self.events]
        have = set(known)
        events = [
            name
            for name, limit in self.events.items()
            if name in self.direct or limit.series in self.series or limit.readout in have
        ]
        return tuple(dict.fromkeys(known + events))

    def series_values(self, samples: Tensor, name: str) -> Tensor:
        """One series' values of the samples. Shapes: (..., D) -> (..., T)."""
        t = len(self.times_min)
        i = self.series.index(name)
        return samples[..., i * t : (i + 1) * t]

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        """Every readout in `names`. Shapes: samples (..., D) -> each (...), samples' dtype."""
        if samples.shape[-1] != self.width:
            raise ValueError(
                f"samples have {samples.shape[-1]} values in their last dimension; this outcome reads "
                f"{self.width} ({len(self.series)} series x {len(self.times_min)} times + {len(self.direct)} readouts)"
            )
        out = {r.name: series_readout(r, self.times_min, self.series_values(samples, r.series or "")) for r in self.computed}
        offset = len(self.series) * len(self.times_min)
        for j, name in enumerate(self.direct):
            out.setdefault(name, self._direct(name, samples[..., offset + j]))
        for name, limit in self.events.items():
            if name not in out:
                self._event(name, limit, samples, out)
        return out

    __call__ = readouts

    def _direct(self, name: str, draw: Tensor) -> Tensor:
        """A directly predicted readout from its draw (...): events and binary readouts become 0/1 or [0, 1]."""
        if name in self.events:
            return (draw > 0.5).to(draw.dtype)
        return draw.clamp(0.0, 1.0) if name in self.binary else draw

    def _event(self, name: str, limit: SafetyLimit, samples: Tensor, out: dict[str, Tensor]) -> None:
        """Add limit's event readout to `out` when the samples can judge it (its series, or its readout)."""
        if limit.series is not None and limit.series in self.series:
            out[name] = limit_event(limit, self.series_values(samples, limit.series))
        elif limit.readout is not None and limit.readout in out:
            out[name] = limit_event(limit, out[limit.readout], over_last=False)

    def p_unsafe(self, samples: Tensor) -> dict[str, Tensor]:
        """P(event) per safety limit it can judge, keyed by `SafetyLimit.name`. Shapes: (b, S, D) -> each (b,)."""
        readouts = self.readouts(samples)
        return {limit.name: readouts[name].mean(-1) for name, limit in self.events.items() if name in readouts}
