"""What information gain is measured on: the readouts the campaign decides by, each in units of its noise.

Disagreement between ensemble members about raw samples (a whole glucose day, a cell's genes) is
mostly about things no decision depends on: members that disagree whether a hopeless regimen peaks
at 400 or 600 mg/dL teach the campaign nothing it will use. So IG is measured on K features per
sample, one per quantity that ranks or filters candidates:

- the objective: before any safe result, its readout; after, its utility's margin to the best safe
  result so far (the incumbent), saturated as below: what the campaign decides is whether a
  candidate beats the incumbent, so disagreement about how bad a clearly worse candidate is (a
  regimen whose time in range is 0.1 or 0.3) counts little;
- per safety limit, a margin: the signed distance m from the watched value to the threshold
  (positive on the safe side; for a two-sided limit, the nearer side), saturated as
  w * tanh(m / w) and divided by its noise floor. Within about w of the threshold the margin is
  linear, so disagreement there counts in full; far from it every member's margin is close to
  +-w, so disagreement about values no limit is near adds almost nothing.

Each feature's noise floor is `ig_noise_fraction` times its scale: 1.0 for a declared fraction
(time in range/above/below) or a binary readout, otherwise the 10-90 % quantile range of its
predicted samples over the menu and its observed values in the history, whichever is wider (a
readout in mg/dL gets a floor in mg/dL, a fraction one in fractions). The margin width w is
`ig_margin_width` times the margin's scale.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Readout, unsafe_readout_name

from ._protocols import OutcomeLike
from ._safety import limit_margin
from .errors import WorldModelMismatch

__all__ = ["FRACTION_STATS", "Feature", "ReadoutFeatures", "readout_features"]

Readouts = Mapping[str, Tensor]
FRACTION_STATS = ("time_in_range", "time_above", "time_below")


@dataclass(frozen=True)
class Feature:
    """One quantity IG is measured on. `raw(readouts)` maps readouts (...) to (...) in readout units
    (None when a needed readout is missing); `width` (None: no saturation) and `floor` in the same units."""

    name: str
    raw: Callable[[Readouts], Tensor | None]
    floor: float
    width: float | None = None

    def __call__(self, readouts: Readouts) -> Tensor:
        """readouts (...) each -> this feature in units of its noise floor (...)."""
        value = self.raw(readouts)
        if value is None:
            raise WorldModelMismatch(f"the world model's outcome no longer gives what IG feature {self.name!r} needs")
        value = value.double()
        if self.width is not None:
            value = self.width * torch.tanh(value / self.width)
        return value / self.floor


class ReadoutFeatures:
    """Maps world-model samples to IG features: samples (..., D) -> (..., K), K = len(features).

    `outcome.readouts` turns each sample into readouts (the samples stay opaque to the planner);
    each `Feature` turns them into one number in units of its noise floor.
    """

    def __init__(self, outcome: OutcomeLike, features: Sequence[Feature]) -> None:
        self.outcome, self.features = outcome, tuple(features)

    def __call__(self, samples: Tensor) -> Tensor:
        readouts = self.outcome.readouts(samples)
        return torch.stack([f(readouts) for f in self.features], dim=-1)

    def describe(self) -> str:
        """The features in words, for the ranking's note."""
        parts = [
            f"{f.name} (floor {f.floor:.3g}" + (f", width {f.width:.3g})" if f.width is not None else ")") for f in self.features
        ]
        return ", ".join(parts)


def readout_features(
    spec: CampaignSpec,
    predicted: Readouts,
    observed: Sequence[Mapping[str, float]],
    declared: Sequence[Readout],
    noise_fraction: float,
    margin_width: float,
    incumbent: float | None = None,
) -> list[Feature]:
    """The objective's feature and one margin per safety limit, scaled from the menu and the history.

    Shapes: predicted[name] (S, n), the menu's readout samples; `observed`, one readout dict per
    run experiment. `incumbent`: the best safe observed utility, or None. A limit whose margin the
    outcome cannot give (neither its watched readout nor the extremes of its series, see
    `limit_margin`) falls back to its 0/1 event readout, scale 1.
    """
    build = _Builder(predicted, observed, {r.name: r for r in declared}, noise_fraction, margin_width)
    features = [_objective_feature(spec, build, incumbent)]
    for limit in spec.safety:
        if limit_margin(limit, predicted, declared) is not None:
            margin = functools.partial(limit_margin, limit, declared=declared)
            fraction = limit.readout is not None and build.is_fraction(limit.readout)
            features.append(build(f"margin to {limit.describe()}", margin, fraction=fraction, saturate=True))
        else:  # no continuous margin: the members' disagreement about P(event) still informs
            event = unsafe_readout_name(limit)
            features.append(build(f"event {event}", functools.partial(_get, event), fraction=True, saturate=False))
    return features


def _objective_feature(spec: CampaignSpec, build: _Builder, incumbent: float | None) -> Feature:
    """The objective readout; once a safe result exists, its utility's margin to the incumbent, saturated."""
    name = spec.objective.readout
    fraction = build.is_fraction(name)  # every direction's utility of a fraction spans at most 1
    if incumbent is None:
        return build(name, functools.partial(_get, name), fraction=fraction, saturate=False)
    raw = functools.partial(_utility_margin, spec, incumbent)
    return build(f"{name} utility - best {incumbent:.3g}", raw, fraction=fraction, saturate=True)


def _utility_margin(spec: CampaignSpec, incumbent: float, readouts: Readouts) -> Tensor | None:
    value = readouts.get(spec.objective.readout)
    return None if value is None else spec.objective.utility(value.double()) - incumbent


def _get(name: str, readouts: Readouts) -> Tensor | None:
    return readouts.get(name)


@dataclass
class _Builder:
    """Scales features from the menu's predicted readouts (S, n) and the observed ones."""

    predicted: Readouts
    observed: Sequence[Mapping[str, float]]
    declared: Mapping[str, Readout]
    noise_fraction: float
    margin_width: float

    def __call__(self, name: str, raw: Callable[[Readouts], Tensor | None], *, fraction: bool, saturate: bool) -> Feature:
        scale = 1.0 if fraction else _scale(raw, self.predicted, self.observed)
        width = self.margin_width * scale if saturate else None
        return Feature(name=name, raw=raw, floor=self.noise_fraction * scale, width=width)

    def is_fraction(self, name: str) -> bool:
        """A declared readout whose values are fractions or 0/1: its scale is 1 whatever the menu."""
        readout = self.declared.get(name)
        return readout is not None and (readout.binary or readout.stat in FRACTION_STATS)


def _scale(raw: Callable[[Readouts], Tensor | None], predicted: Readouts, observed: Sequence[Mapping[str, float]]) -> float:
    """The wider of the 10-90 % quantile ranges of the predicted samples and of the observed values (1.0 if both 0)."""
    values = raw(predicted)
    spreads = [_spread(values.double().reshape(-1))] if values is not None else []
    seen = [v for v in (raw({k: torch.tensor(x, dtype=torch.float64) for k, x in o.items()}) for o in observed) if v is not None]
    if len(seen) > 1:
        spreads.append(_spread(torch.stack(seen)))
    scale = max(spreads, default=0.0)
    return scale if scale > 0 else 1.0


def _spread(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    if len(finite) < 2:
        return 0.0
    return float(torch.quantile(finite, 0.9) - torch.quantile(finite, 0.1))
