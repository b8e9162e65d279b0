"""`SimulatedLab`: an in-process lab around any Python function; the fake every other room's tests use."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    Observation,
    Ticket,
    Trajectory,
    computed_readouts,
    glucose_readouts,
)

from ._protocol import Lab
from .errors import UnknownTicket

__all__ = ["SimulatedLab", "World"]

World = Callable[[Intervention], "Trajectory | dict[str, float]"]
"""What a simulated lab runs: an intervention in, a trajectory or a dict of readouts out."""


class SimulatedLab(Lab):
    """Runs `world(intervention)` synchronously at submit, with the protocol's validation and idempotency.

    `polls_until_done` polls return None before the Observation comes back, so callers can exercise
    pending results. `runs[key]` counts how often `world` ran per experiment key, so tests can assert
    that nothing ran twice. A world that raises gives a "failed" Observation carrying the error.
    When `world` returns a Trajectory, the readouts are those the spec computes from its series
    (and, for a "glucose" series, `campaign.glucose_readouts`); a dict is taken as the readouts.
    """

    def __init__(self, spec: CampaignSpec, world: World, *, polls_until_done: int = 0, name: str = "simulated") -> None:
        if polls_until_done < 0:
            raise ValueError(f"polls_until_done must be >= 0, got {polls_until_done}")
        super().__init__(spec, name)
        self.world, self.polls_until_done = world, polls_until_done
        self.runs: dict[str, int] = {}
        self._results: dict[str, Observation] = {}
        self._polls: dict[str, int] = {}

    def _start(self, experiment: Experiment) -> Ticket:
        key = experiment.key
        self.runs[key] = self.runs.get(key, 0) + 1
        self._results[key] = self._run(experiment)
        self._polls[key] = 0
        return Ticket(experiment_key=key, lab=self.name, lab_ref=f"{self.name}:{key}")

    def _poll(self, ticket: Ticket) -> Observation | None:
        key = self._known(ticket)
        self._polls[key] += 1
        return self._results[key] if self._polls[key] > self.polls_until_done else None

    def _cancel(self, ticket: Ticket) -> None:
        self._known(ticket)

    def _known(self, ticket: Ticket) -> str:
        if ticket.experiment_key not in self._results:
            raise UnknownTicket(ticket)
        return ticket.experiment_key

    def _run(self, experiment: Experiment) -> Observation:
        try:
            return self._observation(experiment.key, self.world(experiment.intervention))
        except Exception as exc:  # a failed run is an observation, not a crash of the loop
            message = f"{type(exc).__name__}: {exc}"
            return Observation(experiment_key=experiment.key, status="failed", message=message, lab=self.name)

    def _observation(self, key: str, result: Trajectory | dict[str, float]) -> Observation:
        if isinstance(result, Trajectory):
            readouts = self._readouts(result)
            return Observation(experiment_key=key, status="ok", trajectory=result, readouts=readouts, lab=self.name)
        readouts = {k: float(v) for k, v in result.items()}
        return Observation(experiment_key=key, status="ok", readouts=readouts, lab=self.name)

    def _readouts(self, trajectory: Trajectory) -> dict[str, float]:
        glucose = trajectory.series.get("glucose")
        computed = computed_readouts(self.spec, Observation(experiment_key="", status="ok", trajectory=trajectory))
        return {**computed, **glucose_readouts(np.asarray(glucose), self.spec)} if glucose else computed
