"""What the planner needs from a world model: exactly the calls it makes, and no more."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from botorch.models.model import Model
from torch import Tensor

from wetloop.campaign import Band, Intervention

__all__ = ["OutcomeLike", "WorldLike"]


@runtime_checkable
class OutcomeLike(Protocol):
    """Turns glucose trajectory samples into the readouts the lab reports."""

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        """Readouts per sample. Shapes: samples (..., T) in mg/dL -> each readout (...).

        Must hold the objective's readout and, for each safety limit on glucose,
        `campaign.unsafe_readout_name(limit)` as 1.0 (an event happened) or 0.0.
        """
        ...


@runtime_checkable
class WorldLike(Protocol):
    """A fitted world model, as the planner sees it (`worldmodel.TrajectoryWorldModel` is one).

    `botorch_model()` returns an `EnsembleModel` whose `posterior(X)` for X (batch, q, d) has
    `values` (batch, S, q, T): glucose samples in mg/dL at the model's `times_min` (T floats).
    S = members * particles, member-major (sample s belongs to member s // particles); the model
    carries int attributes `members` and `particles`.
    """

    version: str
    outcome: OutcomeLike

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> unit-cube inputs X (n, d), via `spec.variable(name).to_unit`."""
        ...

    def botorch_model(self) -> Model:
        """The ensemble as a BoTorch `EnsembleModel` (see the class docstring for shapes)."""
        ...

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band:
        """The predicted glucose band (median and central `level` interval) of one intervention."""
        ...
