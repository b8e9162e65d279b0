"""Errors of the lab adapters.

    WetloopError                      (wetloop.campaign) base of every error the project raises on purpose
    └── LabError                      a lab could not do what was asked
        ├── WorldOptionError          the spec's world_options are unusable (.option, .value, .choices)
        ├── ExperimentRejected        the intervention breaks the spec's hard limits (.experiment, .reasons)
        ├── WorldNotFound             no lab adapter is registered for spec.world (.world, .known)
        ├── UnknownTicket             this lab never issued that ticket (.ticket)
        ├── LabClosed                 the lab was closed; open a new one (.lab)
        ├── LabTimeout                `wait_for` gave up before every result came back (.pending)
        ├── MalformedResult           the lab answered, but not with a valid result (.experiment_key, .raw)
        ├── LabUnreachable            a remote lab did not answer, even after retries (.url, .attempts)
        ├── LabProtocolError          a remote lab answered outside the protocol (.url, .status, .body)
        ├── BenchServerUnavailable    `bench adapters` cannot start this adapter's server here (.adapter)
        ├── WorldMismatch             a remote lab runs another world than the spec asks for (.url, .differences)
        ├── WorkerLost                the worker (or node) running a simulated experiment died, and it was not re-run (.hint)
        └── LiquidHandlingError       a liquid-handling step failed for one experiment (.experiment_key, .well, .step, .cause)
            ├── VolumeError           a volume does not fit: a tip's or a well's capacity, or a stock ran dry
            └── TipError              no tip where one was expected, or a channel already holds one

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
    "LabUnreachable",
    "LabProtocolError",
    "BenchServerUnavailable",
    "WorldMismatch",
    "WorkerLost",
    "LiquidHandlingError",
    "VolumeError",
    "TipError",
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
        super().__init__(f"lab {getattr(lab, 'name', lab)!r} is closed; create a new one (results already on disk are kept).")


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


class LabUnreachable(LabError, ConnectionError):
    """A remote lab did not answer (connection refused or dropped, timeouts, 5xx) after every retry.

    Nothing is lost: submissions are idempotent and the lab keeps results until they are fetched.
    """

    def __init__(self, url: str, attempts: int, cause: str) -> None:
        self.url, self.attempts, self.cause = url, attempts, cause
        super().__init__(
            f"lab at {url} did not answer after {attempts} attempt(s) ({cause}); check that the lab server runs "
            "and is reachable, then resume the campaign: accepted experiments are kept by the lab and never run twice."
        )


class LabProtocolError(LabError):
    """A remote lab answered, but not as the protocol says (a wrong protocol version, an unexpected
    status code, a body that is not the documented shape where no result is involved)."""

    def __init__(self, url: str, status: int | None, body: Any, problem: str) -> None:
        self.url, self.status, self.body, self.problem = url, status, body, problem
        super().__init__(
            f"lab at {url} answered outside the protocol (HTTP {status}): {problem}; "
            "check that base_url points at a wetloop lab server of a compatible protocol version."
        )


class BenchServerUnavailable(LabError):
    """`wetloop bench adapters` cannot start a loopback server for this adapter on this machine."""

    def __init__(self, adapter: str, reason: str) -> None:
        self.adapter, self.reason = adapter, reason
        super().__init__(f"adapter {adapter!r} skipped: {reason}")


class WorldMismatch(LabError):
    """A remote lab serves another world (name, options, seed or variables) than the campaign's spec:
    its results would answer a different question, so nothing is submitted."""

    def __init__(self, url: str, differences: Sequence[str]) -> None:
        self.url, self.differences = url, tuple(differences)
        super().__init__(
            f"the lab at {url} runs a different world than this campaign's spec ({'; '.join(self.differences)}; "
            "the spec's value first); start the server with this campaign's spec, or point the spec at the right lab."
        )


class WorkerLost(LabError, RuntimeError):
    """The process (or the cluster node) that ran a simulated experiment died before it returned, and
    the executor did not run it again; `.hint` says what to check. Nothing was recorded for it."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(f"{message}{'; ' + hint if hint else ''}")


class LiquidHandlingError(LabError):
    """A liquid-handling step (pick up tip, aspirate, dispense, drop tip) failed while preparing one
    experiment's well; `cause` is the liquid handler's own error (e.g. PyLabRobot's)."""

    def __init__(self, experiment_key: str, well: str, step: str, cause: BaseException, hint: str) -> None:
        self.experiment_key, self.well, self.step, self.cause = experiment_key, well, step, cause
        super().__init__(
            f"experiment {experiment_key} failed in well {well} at '{step}': {hint} "
            f"(the liquid handler said {type(cause).__name__}: {cause})"
        )


class VolumeError(LiquidHandlingError):
    """A volume does not fit: more than a tip or a well holds, or more than a stock has left."""


class TipError(LiquidHandlingError):
    """No tip where one was expected (the deck ran out), or a channel already holds a tip."""
