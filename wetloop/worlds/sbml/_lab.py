"""`SbmlLab`: each experiment is one run of the spec's SBML model under the intervention's inputs.

A run takes milliseconds, so it happens in this process, at submit. Noise-free trajectories are
kept on disk (`DayStore`, keyed by model, options and intervention), so a resumed campaign, or a
second lab sharing `cache_dir`, never simulates the same run twice; the measurement noise is drawn
afresh from (spec.seed, experiment key) each time a result is read, which gives the same sample for
the same experiment and a new one for a repeat under another key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from wetloop.campaign import CampaignSpec, Experiment, Observation, Ticket, Trajectory, computed_readouts
from wetloop.lab_adapters import Lab, UnknownTicket
from wetloop.lab_adapters._disk import DayStore

from ._model import ModelInfo, model_info, sbml_cache_dir
from ._options import SbmlOptions
from ._simulate import SimulationError, add_noise, noise_seed, runner_versions, simulate

__all__ = ["SbmlLab", "observation_of", "run_key"]


def run_key(info: ModelInfo, options: SbmlOptions, values: dict[str, Any]) -> str:
    """The identity of a noise-free run: the model's content, every option but noise, the values."""
    blob = json.dumps(
        {"model": info.sha, "options": options.model_dump(mode="json", exclude={"noise"}), "values": values},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class SbmlLab(Lab):
    """Runs experiments of a spec on world `sbml` (see the module docstring).

    Args:
        spec: the campaign; its `world_options` are `SbmlOptions` (checked here, before any submit).
        options: the validated options (the world passes them; read from `spec` when None).
        cache_dir: where runs and converted models are kept (default `$XDG_CACHE_HOME/wetloop/sbml`).
        name: the lab's name, written on its tickets.
    """

    def __init__(
        self, spec: CampaignSpec, options: SbmlOptions | None = None, *, cache_dir: Path | str | None = None, name: str = "sbml"
    ) -> None:
        super().__init__(spec, name)
        self.options = options or SbmlOptions.model_validate(spec.world_options)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else sbml_cache_dir()
        self.info = model_info(self.options.model, self.cache_dir)
        self.store = DayStore(self.cache_dir / "runs" / self.info.sha)
        self._done: dict[str, Observation] = {}

    def completed_runs(self) -> dict[str, int]:
        """Simulations that finished, per experiment key, across every lab sharing cache_dir."""
        return self.store.completed_runs()

    # -- the protocol ---------------------------------------------------------------------------
    def _start(self, experiment: Experiment) -> Ticket:
        values = experiment.intervention.canonical()
        ref = run_key(self.info, self.options, values)
        if experiment.key not in self._done:
            self._done[experiment.key] = self._result(experiment.key, ref, values)
        return Ticket(experiment_key=experiment.key, lab=self.name, lab_ref=ref)

    def _poll(self, ticket: Ticket) -> Observation | None:
        done = self._done.get(ticket.experiment_key)
        if done is not None:
            return done
        stored = self.store.read_result(ticket.lab_ref)  # a ticket of an earlier lab on this cache_dir
        if stored is None:
            raise UnknownTicket(ticket, f"no run {ticket.lab_ref} under {self.store.root}; submit the experiment again")
        return self._remember(ticket.experiment_key, self._observation(ticket.experiment_key, stored, "hit"))

    def _cancel(self, ticket: Ticket) -> None:
        """Runs finish at submit, so there is nothing to stop; forget the result so a resubmit reruns noise."""
        self._done.pop(ticket.experiment_key, None)

    # -- runs -----------------------------------------------------------------------------------
    def _remember(self, key: str, obs: Observation) -> Observation:
        self._done[key] = obs
        return obs

    def _result(self, key: str, ref: str, values: dict[str, Any]) -> Observation:
        with self.store.lock(ref):  # another process may be running the same point: wait, then read it
            stored = self.store.read_result(ref)
            if stored is not None:
                return self._observation(key, stored, "hit")
            try:
                series = simulate(self.info, self.options, values)
            except (SimulationError, ValueError) as exc:  # a failed run is an observation, not a crash
                return Observation(
                    experiment_key=key,
                    status="failed",
                    lab=self.name,
                    raw=runner_versions(),
                    message=f"{exc}; check the model and the input values, then submit again",
                )
            stored = {"series": series, "values": values}
            self.store.write_result(ref, stored)
            self.store.mark_run(key, ref)
        return self._observation(key, stored, "miss")

    def _observation(self, key: str, stored: dict[str, Any], cache: str) -> Observation:
        return observation_of(self.spec, self.options, self.info, key, stored["series"], cache, self.name)


def observation_of(
    spec: CampaignSpec,
    options: SbmlOptions,
    info: ModelInfo,
    key: str,
    series: dict[str, list[float]],
    cache: str = "",
    lab: str = "sbml",
) -> Observation:
    """The Observation of a noise-free run: noise drawn for (spec.seed, key), then the spec's readouts."""
    seed = noise_seed(spec.seed, key)
    units = {name: info.resolve(sid, "observe").unit for sid, name in options.observe.items()}
    raw = {
        **runner_versions(),
        "model": options.model,
        "model_sha": info.sha,
        "time_unit": info.time_unit,
        "noise_seed": seed,
        "cache": cache,
    }
    noisy = {k: tuple(v) for k, v in add_noise(series, options, seed).items()}
    try:
        trajectory = Trajectory(times_min=options.times_min, series=noisy, units=units)
    except ValidationError as exc:  # e.g. the integrator diverged to inf/nan
        return Observation(
            experiment_key=key,
            status="failed",
            lab=lab,
            raw=raw,
            message=f"the run gave an unusable trajectory ({exc.errors()[0]['msg']}); check the input values",
        )
    obs = Observation(experiment_key=key, status="ok", trajectory=trajectory, lab=lab, raw=raw)
    return obs.model_copy(update={"readouts": computed_readouts(spec, obs)})
