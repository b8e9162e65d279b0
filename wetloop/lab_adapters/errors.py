"""Errors of the lab adapters.

    WetloopError                      (wetloop.campaign) base of every error the project raises on purpose
    └── LabError                      a lab could not do what was asked
        ├── WorldOptionError          the spec's world_options are unusable (.option, .value, .choices)
        ├── ExperimentRejected        the intervention breaks the spec's hard limits (.experiment, .reasons)
        ├── WorldNotFound             no lab adapter is registered for spec.world (.world, .known)
        ├── UnknownTicket             this lab never issued that ticket (.ticket)
        ├── LabClosed                 the lab was closed; open a new one (.lab)
        ├── LabTimeout                `wait_for` gave up before every result came back (.pending)
        └── MalformedResult           the lab answered, but not with a valid result (.experiment_key, .raw)

Each message says what was wrong and what to try; the object at fault rides on the exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from wetloop.campaign import WetloopError

__all__ = [
    "LabError",
    "WorldOptionError",
    "ExperimentRejected",
    "WorldNotFound",
    "UnknownTicket",
    "LabClosed",
    "LabTimeout",
    "MalformedResult",
]


class LabError(WetloopError):
    """Base of the lab adapters' errors."""


class WorldOptionError(LabError, ValueError):
    """A `world_options` entry of the spec is missing or not one the world knows."""

    def __init__(self, option: str, value: Any, choices: Iterable[Any] = (), hint: str = "") -> None:
        self.option, self.value, self.choices = option, value, tuple(choices)
        listed = f"; valid choices: {', '.join(map(str, self.choices))}" if self.choices else ""
        super().__init__(f"world_options.{option} = {value!r} is not usable{listed}{'; ' + hint if hint else ''}")


class ExperimentRejected(LabError):
    """The lab refused an experiment before running anything: its intervention breaks the hard limits."""

    def __init__(self, reasons: Sequence[str], experiment: Any) -> None:
        self.reasons, self.experiment = tuple(reasons), experiment
        key = getattr(experiment, "key", "?")
        super().__init__(
            f"experiment {key} rejected, nothing was run: {'; '.join(self.reasons)}. "
            "Choose values inside the spec's hard limits (spec.interventions lower/upper)."
        )


class WorldNotFound(LabError, KeyError):
    """`spec.world` names no registered lab adapter."""

    def __init__(self, world: str, known: Iterable[str]) -> None:
        self.world, self.known = world, tuple(sorted(known))
        super().__init__(
            f"no lab adapter for world {world!r}; known worlds: {', '.join(self.known)}. "
            "Fix spec.world or register an adapter with wetloop.lab_adapters.register_world."
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class UnknownTicket(LabError, KeyError):
    """The ticket was not issued by this lab (or by an earlier instance sharing its journal)."""

    def __init__(self, ticket: Any, why: str = "") -> None:
        self.ticket = ticket
        super().__init__(
            f"lab does not know ticket {ticket!r}{': ' + why if why else ''}; "
            "poll a ticket with the lab (and cache_dir) that issued it, or submit the experiment again."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class LabClosed(LabError, RuntimeError):
    """The lab was closed; its workers are gone."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        super().__init__(
            f"lab {getattr(lab, 'name', lab)!r} is closed; create a new one (results already on disk are kept)."
        )


class LabTimeout(LabError, TimeoutError):
    """Results did not come back in time; the experiments keep running and can be polled later."""

    def __init__(self, pending: Sequence[Any], timeout_s: float) -> None:
        self.pending, self.timeout_s = tuple(pending), timeout_s
        super().__init__(
            f"{len(self.pending)} experiment(s) still running after {timeout_s:g} s; "
            "poll their tickets later or wait with a longer timeout_s."
        )


class MalformedResult(LabError, ValueError):
    """The lab's reply for an experiment could not be read as a valid Observation.

    `raw` keeps the reply as received (JSON-able), so the caller can quarantine it: it is never
    lost, and never fed to a model.
    """

    def __init__(self, experiment_key: str, raw: Any, problem: str) -> None:
        super().__init__(f"the lab's result for experiment {experiment_key} is malformed: {problem}; it is quarantined, not used")
        self.experiment_key, self.raw, self.problem = experiment_key, raw, problem
