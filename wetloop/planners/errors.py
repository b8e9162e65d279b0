"""Errors of the planner.

    WetloopError                  (wetloop.campaign) base of every error the project raises on purpose
    └── PlannerError              the planner cannot rank what it was given
        ├── EmptyMenu             no candidates to rank (.proposals)
        └── WorldModelMismatch    the world model does not provide what the planner reads (.world)

Each message says what was wrong and what to try; the object at fault rides on the exception.
"""

from __future__ import annotations

from typing import Any

from wetloop.campaign import WetloopError

__all__ = ["EmptyMenu", "PlannerError", "WorldModelMismatch"]


class PlannerError(WetloopError):
    """The planner could not rank the candidates it was given."""


class EmptyMenu(PlannerError, ValueError):
    """`rank` was called with no candidate experiments."""

    def __init__(self, proposals: Any = ()) -> None:
        super().__init__(
            "the planner was given no candidate experiments to rank; ask the proposer for candidates "
            "(check that they passed the spec's hard limits) and call rank again"
        )
        self.proposals = proposals


class WorldModelMismatch(PlannerError):
    """The world model's posterior or outcome readouts are not shaped as the planner expects."""

    def __init__(self, message: str, world: Any = None) -> None:
        super().__init__(message)
        self.world = world
