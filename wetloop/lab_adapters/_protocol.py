"""The lab protocol: a lab adapter is a transport (httpx's `BaseTransport`) with a poll step (Ax's `Runner`).

`Lab` owns the guarantees every adapter shares, so each adapter only says how to start, check,
cancel and shut down a run:

- `submit` validates the intervention against the spec's hard limits first and runs nothing when
  it breaks them (`ExperimentRejected`, with every reason).
- `submit` is idempotent by `experiment.key`: the same key returns the same `Ticket` and the
  experiment never runs twice (until it is cancelled; a cancelled experiment may be submitted again).
- `poll` returns None while the experiment runs and its `Observation` once done: status "ok", or
  "failed" with the error in `message`, or "cancelled".
- After `close` (or leaving a `with` block) every call but `close` raises `LabClosed`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from wetloop.campaign import CampaignSpec, Experiment, Observation, Ticket

from .errors import ExperimentRejected, LabClosed, LabTimeout, UnknownTicket

__all__ = ["Lab", "wait_for"]


class Lab(ABC):
    """Base of every lab adapter: validation, idempotency, ticket checks and the closed state.

    Subclasses implement `_start`, `_poll`, `_cancel` and `_shutdown`; they are only ever called
    with valid experiments and with tickets this lab issued, and never after `close`.
    """

    name: str
    spec: CampaignSpec

    def __init__(self, spec: CampaignSpec, name: str) -> None:
        self.spec, self.name = spec, name
        self._tickets: dict[str, Ticket] = {}
        self._cancelled: set[str] = set()
        self._closed = False

    # -- the protocol ---------------------------------------------------------------------------
    def submit(self, experiment: Experiment) -> Ticket:
        """Accept an experiment and start it; the same key returns the same ticket and runs once.

        Raises `ExperimentRejected` (nothing runs) when the intervention breaks the hard limits,
        `LabClosed` after `close`.
        """
        self._ensure_open()
        reasons = experiment.intervention.violations(self.spec)
        if reasons:
            raise ExperimentRejected(reasons, experiment=experiment)
        ticket = self._tickets.get(experiment.key)
        if ticket is None:
            self._cancelled.discard(experiment.key)
            ticket = self._tickets[experiment.key] = self._start(experiment)
        return ticket

    def poll(self, ticket: Ticket) -> Observation | None:
        """None while the experiment runs; its Observation ("ok", "failed" or "cancelled") when done."""
        self._ensure_open()
        self._check_owner(ticket)
        if ticket.experiment_key in self._cancelled:
            return self._cancelled_observation(ticket)
        return self._poll(ticket)

    def cancel(self, ticket: Ticket) -> None:
        """Stop waiting for an experiment; later polls return status "cancelled"."""
        self._ensure_open()
        self._check_owner(ticket)
        self._cancel(ticket)
        self._tickets.pop(ticket.experiment_key, None)
        self._cancelled.add(ticket.experiment_key)

    def close(self) -> None:
        """Release workers and handles; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._shutdown()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        self._ensure_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- what an adapter implements -------------------------------------------------------------
    @abstractmethod
    def _start(self, experiment: Experiment) -> Ticket:
        """Start a valid experiment whose key this instance has not started; return its ticket."""

    @abstractmethod
    def _poll(self, ticket: Ticket) -> Observation | None:
        """The observation of a ticket of this lab, or None; raise `UnknownTicket` if never issued."""

    @abstractmethod
    def _cancel(self, ticket: Ticket) -> None:
        """Stop the run if it can still be stopped; raise `UnknownTicket` if never issued."""

    def _shutdown(self) -> None:  # noqa: B027  (optional hook: most labs hold nothing to release)
        """Release resources (default: nothing to release)."""

    # -- helpers --------------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._closed:
            raise LabClosed(self)

    def _check_owner(self, ticket: Ticket) -> None:
        if ticket.lab != self.name:
            raise UnknownTicket(ticket, f"it was issued by lab {ticket.lab!r}, this is {self.name!r}")

    def _cancelled_observation(self, ticket: Ticket) -> Observation:
        return Observation(
            experiment_key=ticket.experiment_key,
            status="cancelled",
            message="cancelled before a result came back; submit it again to rerun",
            lab=self.name,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}(name={self.name!r}, spec={self.spec.name!r}, {state})"


def wait_for(lab: Lab, tickets: Sequence[Ticket], *, timeout_s: float | None = None, poll_s: float = 0.05) -> list[Observation]:
    """Poll every ticket until each has its Observation; results in the order of `tickets`.

    Raises `LabTimeout` (carrying the pending tickets) when `timeout_s` passes first.
    """
    results: dict[int, Observation] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        for i, ticket in enumerate(tickets):
            if i not in results and (obs := lab.poll(ticket)) is not None:
                results[i] = obs
        if len(results) == len(tickets):
            return [results[i] for i in range(len(tickets))]
        if deadline is not None and time.monotonic() > deadline:
            raise LabTimeout([t for i, t in enumerate(tickets) if i not in results], timeout_s or 0.0)
        time.sleep(poll_s)
