"""`SimulatedLab`: an in-process lab around any Python function; the fake every other room's tests use."""

from __future__ import annotations

from collections.abc import Callable

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    Observation,
    Readout,
    SpecError,
    Ticket,
    Trajectory,
    computed_readouts,
    get_world,
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
    When `world` returns a Trajectory, the readouts are those the campaign's world computes from its
    series (`World.readouts(spec)`; the spec's own when the world is not registered); a dict is taken
    as the readouts.
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
        obs = Observation(experiment_key="", status="ok", trajectory=trajectory)
        return computed_readouts(self.spec, obs, self._world_readouts())

    def _world_readouts(self) -> tuple[Readout, ...]:
        """The readouts of the spec's world, or the spec's own when that world cannot be loaded."""
        try:
            return tuple(get_world(self.spec.world).readouts(self.spec))
        except SpecError:
            return tuple(self.spec.readouts)
