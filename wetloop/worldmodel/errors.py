"""Errors of the world model.

    WetloopError                      (wetloop.campaign) base of every error the project raises
    └── WorldModelError               the world model cannot do what was asked (raised as is when the
        │                             spec lacks what it needs, e.g. a basal rate for the pre-history)
        ├── NotFittedError            used before `fit` (or `load`) gave it weights (.model)
        ├── NoTrainingData            `fit` found no usable "ok" day to learn from (.data)
        ├── ObservationFormatError    an observation lacks a series or time grid the model needs (.observation)
        └── ModelFileError            a saved model cannot be read or belongs to another world (.path)

Each message says what was wrong and what to try; the object at fault rides on the exception.
"""

from __future__ import annotations

from typing import Any

from wetloop.campaign import WetloopError

__all__ = ["WorldModelError", "NotFittedError", "NoTrainingData", "ObservationFormatError", "ModelFileError"]


class WorldModelError(WetloopError):
    """Base of the world model's errors."""


class NotFittedError(WorldModelError):
    """The world model has no weights yet."""

    def __init__(self, what: str, model: Any = None) -> None:
        super().__init__(
            f"the world model cannot {what} before it is fitted: call `fit(data)` with at least one "
            "(Intervention, Observation) pair whose status is 'ok', or `TrajectoryWorldModel.load(path, spec)`"
        )
        self.model = model


class NoTrainingData(WorldModelError):
    """`fit` was given nothing it could learn from."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


class ObservationFormatError(WorldModelError, ValueError):
    """An observation's trajectory lacks what the model reads (glucose on an even time grid)."""

    def __init__(self, message: str, observation: Any = None) -> None:
        super().__init__(message)
        self.observation = observation


class ModelFileError(WorldModelError):
    """A saved world model is unreadable, of an unknown format, or was fitted for another world."""

    def __init__(self, message: str, path: Any = None) -> None:
        super().__init__(message)
        self.path = path
