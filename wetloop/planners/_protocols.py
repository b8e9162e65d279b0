"""What the planner needs from a world model: exactly the calls it makes, and no more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from botorch.models.model import Model
from torch import Tensor

from wetloop.campaign import Band, Intervention, Observation

from ._ceiling import Ceiling

__all__ = ["KnowsCeiling", "OutcomeLike", "WorldLike"]


@runtime_checkable
class OutcomeLike(Protocol):
    """Turns the world model's samples into the readouts the lab reports."""

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        """Readouts per sample. Shapes: samples (..., D) -> each readout (...).

        D is the model's own: time points of a series (a time-course model), one column per
        readout (a scalar model), series x time; the planner never looks inside a sample. Must
        hold the objective's readout and, for each safety limit, either the 0/1 event readout
        `campaign.unsafe_readout_name(limit)` or what the limit watches: its readout, or for a
        series limit the series' extremes (a declared min/max readout, or `min_<series>` /
        `max_<series>`). The extremes also let information gain measure how close to each limit a
        candidate is (`ReadoutFeatures`), so give them when the model can.
        """
        ...


@runtime_checkable
class WorldLike(Protocol):
    """A fitted world model, as the planner sees it (`worldmodel.TrajectoryWorldModel` is one).

    `botorch_model()` returns an `EnsembleModel` whose `posterior(X)` for X (batch, q, d) has
    `values` (batch, S, q, D), D opaque (see `OutcomeLike.readouts`). S = members * particles,
    member-major (sample s belongs to member s // particles); the model carries int attributes
    `members` and `particles`.
    """

    version: str
    outcome: OutcomeLike

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> inputs X (n, d), d the model's own (it may exceed the number of variables:
        one-hot choices, set indicators). Equal interventions must give equal rows."""
        ...

    def botorch_model(self) -> Model:
        """The ensemble as a BoTorch `EnsembleModel` (see the class docstring for shapes)."""
        ...

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band | None:
        """The predicted band (median and central `level` interval) of one intervention's main series,
        or None when the model predicts no series (a scalar model). Optional: a world model without
        this method gets no bands."""
        ...


@runtime_checkable
class KnowsCeiling(Protocol):
    """A planner that knows when nothing can improve on the campaign's best result (the generic `Planner`
    does). A world's own planner without `ceiling` never reaches one: a screen looks for many hits, so
    its first hit is no ceiling."""

    def ceiling(self, history: Sequence[tuple[Intervention, Observation]]) -> Ceiling | None:
        """The first safe result of `history` at the objective's ceiling, or None."""
        ...
