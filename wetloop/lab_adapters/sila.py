"""`SilaLab`: run experiments on a SiLA 2 server (`pip install "wetloop[sila]"`).

SiLA 2 is the vendor-neutral lab-automation standard (gRPC underneath). A wetloop lab server
implements the `ExperimentRunner` feature (`ExperimentRunner.sila.xml`): the observable command
`RunExperiment(ExperimentJson) -> ObservationJson` runs one experiment with progress, and
`CancelExperiment`, `FindExperiment` and the `WorldDescription` property go with it.

    submit  -> FindExperiment(key): reattach to the server's run of that key, else RunExperiment
    poll    -> the execution's result (None while it runs); `progress(ticket)` is its last progress
    cancel  -> CancelExperiment(key)
    close   -> closes the gRPC channel

Start a server with `wetloop lab serve-sila` or `SilaLabServer(lab).start()`. Both speak over an
insecure (no TLS) loopback connection with SiLA Server Discovery off; `SilaLab` refuses other hosts.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sila2.client import ClientObservableCommandInstance, SilaClient
from sila2.framework import DefinedExecutionError, SilaConnectionError, UndefinedExecutionError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from wetloop.campaign import CampaignSpec, Experiment, Observation, Ticket, result_problem

from ._bench_servers import server_lab_dir
from ._disk import DayStore
from ._protocol import Lab
from ._sila_feature import FEATURE_XML, ExperimentRunnerFeature, world_description, world_mismatch
from ._sila_server import LOOPBACK_HOSTS, SilaLabServer, serve_world
from .errors import LabError, LabUnreachable, MalformedResult, UnknownTicket, WorldMismatch

__all__ = ["SilaLab", "SilaLabServer", "serve_world", "serve_for_bench", "DEFAULT_PORT", "FEATURE_XML"]

log = logging.getLogger("wetloop.lab_adapters.sila")
DEFAULT_PORT = 50052  # the port SiLA's examples use; `wetloop lab serve-sila` defaults to it too


class SilaLab(Lab):
    """A lab reached through a SiLA 2 server implementing `ExperimentRunner`.

    Args:
        spec: the campaign; the server's `WorldDescription` must match it (`WorldMismatch` otherwise).
        host, port: the server; loopback addresses only (the connection has no TLS).
        cache_dir: where accepted submissions are journaled (the runner passes the run's lab folder), so
            a new instance answers an earlier one's tickets even after the server forgot its runs.
        connect_timeout_s: how long to retry connecting while the server starts.
        name: the lab's name, written on its tickets.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        cache_dir: Path | str | None = None,
        connect_timeout_s: float = 10.0,
        name: str = "sila",
    ) -> None:
        super().__init__(spec, name)
        if host not in LOOPBACK_HOSTS:
            loopback = ", ".join(sorted(LOOPBACK_HOSTS))
            raise LabError(f"SilaLab connects without TLS, so only to a loopback address ({loopback}), not {host!r}")
        self.host, self.port, self.url = host, int(port), f"sila://{host}:{port}"
        self._client = _connect(host, self.port, connect_timeout_s, self.url)
        try:
            self._feature: Any = self._runner_feature()
            self.server_world: dict[str, Any] = self._check_world()
        except BaseException:
            self._client.close()
            raise
        self._journal = DayStore(Path(cache_dir) / "sila") if cache_dir is not None else None
        self._runs: dict[str, ClientObservableCommandInstance] = {}
        self._done: dict[str, Observation] = {}
        self._progress: dict[str, float] = {}

    def progress(self, ticket: Ticket) -> float | None:
        """The last progress (0 to 1) the server reported for this experiment; None before any report."""
        return self._progress.get(ticket.experiment_key)

    # -- the protocol ---------------------------------------------------------------------------
    def _start(self, experiment: Experiment) -> Ticket:
        with self._rpc("submit"):
            found = self._feature.FindExperiment(experiment.key).ExecutionUUID
            instance = self._attach(found) if found else self._feature.RunExperiment(experiment.model_dump_json())
        if self._journal is not None:
            self._journal.write_journal(experiment, self.spec)
        self._runs[experiment.key] = instance
        self._done.pop(experiment.key, None)
        return Ticket(experiment_key=experiment.key, lab=self.name, lab_ref=str(instance.execution_uuid))

    def _poll(self, ticket: Ticket) -> Observation | None:
        key = ticket.experiment_key
        if key in self._done:
            return self._done[key]
        instance = self._runs.get(key) or self._reattach(ticket)
        self._note_progress(key, instance.progress)
        if not instance.done:  # the execution-info subscription says; asking for the result early logs an error there
            self._check_run(ticket, instance)
            return None
        try:
            with self._rpc("poll"):
                responses = instance.get_responses()
        except (DefinedExecutionError, UndefinedExecutionError) as exc:
            return self._finish(key, self._refused(key, exc))
        return self._finish(key, self._observation(ticket, instance, responses.ObservationJson))

    def _cancel(self, ticket: Ticket) -> None:
        key = ticket.experiment_key
        known = key in self._runs or key in self._done or self._journaled(key) is not None
        try:
            with self._rpc("cancel"):
                self._feature.CancelExperiment(key)
        except DefinedExecutionError:  # UnknownExperiment: nothing of it runs on the server
            if not known:
                raise UnknownTicket(ticket, f"neither this lab nor the SiLA server at {self.url} knows it") from None
        instance = self._runs.pop(key, None)
        if instance is not None:
            instance.cancel_execution_info_subscription()
        self._done.pop(key, None)
        if self._journal is not None:
            self._journal.drop_journal(key)

    def _shutdown(self) -> None:
        for instance in self._runs.values():
            instance.cancel_execution_info_subscription()
        self._client.close()

    # -- reaching the server --------------------------------------------------------------------
    @contextlib.contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Turn a lost connection into `LabUnreachable` (SiLA's own errors pass through)."""
        try:
            yield
        except SilaConnectionError as exc:
            raise LabUnreachable(self.url, 1, f"{what}: {exc}") from None

    def _runner_feature(self) -> Any:
        feature = getattr(self._client, ExperimentRunnerFeature._identifier, None)
        if feature is None:
            raise LabError(
                f"the SiLA server at {self.url} does not implement {ExperimentRunnerFeature.fully_qualified_identifier}; "
                "point host/port at a wetloop lab server (`wetloop lab serve-sila`)"
            )
        return feature

    def _check_world(self) -> dict[str, Any]:
        with self._rpc("connect"):
            theirs = json.loads(self._feature.WorldDescription.get())
        differences = world_mismatch(world_description(self.spec), theirs)
        if differences:
            raise WorldMismatch(self.url, differences)
        return theirs

    def _check_run(self, ticket: Ticket, instance: ClientObservableCommandInstance) -> None:
        """Is the server still there, running this execution? `LabUnreachable` if it is gone; if it was
        restarted (it no longer knows the execution), follow its new run or submit again from the journal."""
        with self._rpc("poll"):
            found = self._feature.FindExperiment(ticket.experiment_key).ExecutionUUID
        if found != str(instance.execution_uuid):
            instance.cancel_execution_info_subscription()
            self._runs.pop(ticket.experiment_key, None)
            self._reattach(ticket)

    def _attach(self, execution: str) -> ClientObservableCommandInstance:
        """Follow an execution the server already runs (started by this or an earlier client)."""
        return ClientObservableCommandInstance(self._client, self._feature.RunExperiment, UUID(execution))

    def _reattach(self, ticket: Ticket) -> ClientObservableCommandInstance:
        """An earlier instance's ticket: follow the server's run of its key, or run it again from the journal."""
        key = ticket.experiment_key
        with self._rpc("poll"):
            found = self._feature.FindExperiment(key).ExecutionUUID
            if found:
                instance = self._attach(found)
            elif (journaled := self._journaled(key)) is not None:
                log.warning("the SiLA server at %s has no run of %s; submitting it again from the journal", self.url, key)
                instance = self._feature.RunExperiment(journaled.model_dump_json())
            else:
                raise UnknownTicket(
                    ticket, f"the SiLA server at {self.url} has no run of it and no journal under cache_dir holds it"
                )
        self._runs[key] = instance
        return instance

    def _journaled(self, key: str) -> Experiment | None:
        entry = self._journal.read_journal(key) if self._journal is not None else None
        return entry[0] if entry is not None else None

    # -- results --------------------------------------------------------------------------------
    def _note_progress(self, key: str, progress: float | None) -> None:
        """Keep the server's latest progress; log it each time it gains a tenth."""
        last = self._progress.get(key)
        if progress is None or progress == last:
            return
        if last is None or int(10 * progress) > int(10 * last):
            log.info("experiment %s: about %.0f%% done (server's estimate)", key, 100 * progress)
        self._progress[key] = progress

    def _finish(self, key: str, observation: Observation) -> Observation:
        self._done[key] = observation
        self._runs.pop(key, None)
        if observation.status in ("ok", "failed", "rejected"):
            self._progress[key] = 1.0
        return observation

    def _refused(self, key: str, exc: DefinedExecutionError | UndefinedExecutionError) -> Observation:
        """A SiLA error as the experiment's outcome: the server's rejection, or its failure."""
        if isinstance(exc, DefinedExecutionError):
            message = f"the SiLA server refused the experiment ({exc.identifier}): {exc.message}"
            return Observation(experiment_key=key, status="rejected", message=message, lab=self.name)
        message = f"the SiLA server's run failed: {exc}; cancel and submit again to retry"
        return Observation(experiment_key=key, status="failed", message=message, lab=self.name)

    def _observation(self, ticket: Ticket, instance: ClientObservableCommandInstance, text: str) -> Observation:
        """The server's ObservationJson, validated; anything unreadable is a `MalformedResult`."""
        key = ticket.experiment_key
        raw = _json_object(key, text)
        try:
            observation = Observation.model_validate(raw)
        except ValidationError as exc:
            problems = exc.errors(include_url=False)[:3]
            raise MalformedResult(key, raw, f"not an Observation ({exc.error_count()} problem(s): {problems})") from None
        if (problem := result_problem(key, observation, self.spec)) is not None:
            raise MalformedResult(key, raw, problem)
        via = {"server": self.url, "execution": str(instance.execution_uuid), "lab": observation.lab}
        return observation.model_copy(update={"lab": self.name, "raw": {**observation.raw, "sila": via}})


def _json_object(key: str, text: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedResult(key, {"text": text[:100_000]}, f"ObservationJson is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise MalformedResult(key, {"value": raw}, f"ObservationJson is a JSON {type(raw).__name__}, not an object")
    return raw


def _connect(host: str, port: int, timeout_s: float, url: str) -> SilaClient:
    """A SiLA client, retried while the server is still starting; `LabUnreachable` after `timeout_s`."""
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception_type(SilaConnectionError),
        reraise=True,
    )
    try:
        return retrying(SilaClient, host, port, insecure=True)
    except SilaConnectionError as exc:
        raise LabUnreachable(url, int(retrying.statistics.get("attempt_number", 1)), str(exc)) from None


@contextlib.contextmanager
def serve_for_bench(spec: CampaignSpec, work_dir: Path, *, workers: int | None = None) -> Iterator[dict[str, Any]]:
    """A SiLA lab server for `spec`'s local world on 127.0.0.1 (a free port), for `wetloop bench adapters`."""
    server = serve_world(spec, cache_dir=server_lab_dir(work_dir), workers=workers)
    try:
        yield {"host": server.host, "port": server.port}
    finally:
        server.stop()
