"""A SiLA 2 server that runs experiments on a local lab: the `ExperimentRunner` feature over gRPC.

It binds a loopback address only, without TLS (`start_insecure`), and with SiLA Server Discovery off:
it is for tests, demos and a simulator on the same machine, not for a network. Put a real instrument's
SiLA server behind TLS; `SilaLab` speaks the same feature to either.

The lab behind it is any `Lab` (usually `make_lab(spec)` for the spec's local world). The server keeps
experiment key -> run: a second RunExperiment for a key it runs (or ran) joins that run, so an
experiment runs once however often clients ask.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import grpc
import sila2.server.sila_server as _sila_server_module
from pydantic import ValidationError
from sila2.server import FeatureImplementationBase, ObservableCommandInstance, SilaServer

from wetloop.campaign import CampaignSpec, Experiment, LabRef, Observation, Ticket

from ._protocol import Lab
from ._registry import make_lab
from ._sila_feature import (
    ExperimentRejectedError,
    ExperimentRunnerFeature,
    InvalidExperimentError,
    UnknownExperimentError,
    world_description,
)
from .errors import ExperimentRejected, LabError

__all__ = ["SilaLabServer", "serve_world", "LOOPBACK_HOSTS"]

log = logging.getLogger("wetloop.lab_adapters.sila")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})  # "::1" would need brackets sila2 does not add
_PATCH_LOCK = threading.Lock()


@dataclass
class _Run:
    """One experiment the server accepted: its ticket with the lab, and the execution that started it."""

    experiment: Experiment
    ticket: Ticket
    execution: UUID
    started: float
    seconds: float | None = None  # how long it took, once an execution saw it finish


class _Runner(FeatureImplementationBase):
    """The ExperimentRunner implementation; sila2 calls its methods by the feature's identifiers."""

    def __init__(self, parent_server: SilaServer, lab: Lab, *, poll_s: float, expected_s: float) -> None:
        super().__init__(parent_server)
        self.lab, self.poll_s, self.expected_s = lab, poll_s, expected_s
        self._lock = threading.Lock()  # labs are not thread-safe; every execution runs in its own thread
        self._runs: dict[str, _Run] = {}
        self._durations: deque[float] = deque(maxlen=20)
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()  # running executions return, so the server's stop does not wait for days
        super().stop()

    # -- the feature ------------------------------------------------------------------------------
    def RunExperiment(self, ExperimentJson: str, *, metadata: Any, instance: ObservableCommandInstance) -> str:  # noqa: N802, N803
        run = self._accept(_experiment(ExperimentJson), instance.execution_uuid)
        instance.begin_execution()
        return self._wait(run, instance).model_dump_json()

    def CancelExperiment(self, ExperimentKey: str, *, metadata: Any) -> None:  # noqa: N802, N803
        with self._lock:
            run = self._runs.pop(ExperimentKey, None)
            if run is None:
                raise UnknownExperimentError(f"no run of experiment {ExperimentKey!r} on this server")
            self.lab.cancel(run.ticket)
        log.info("cancelled experiment %s", ExperimentKey)

    def FindExperiment(self, ExperimentKey: str, *, metadata: Any) -> str:  # noqa: N802, N803
        with self._lock:
            run = self._runs.get(ExperimentKey)
        return "" if run is None else str(run.execution)

    def get_WorldDescription(self, *, metadata: Any) -> str:  # noqa: N802
        return json.dumps(world_description(self.lab.spec))

    # -- running ----------------------------------------------------------------------------------
    def _accept(self, experiment: Experiment, execution: UUID) -> _Run:
        """The run of this key: the existing one, or a new one started on the lab."""
        with self._lock:
            run = self._runs.get(experiment.key)
            if run is None:
                try:
                    ticket = self.lab.submit(experiment)
                except ExperimentRejected as exc:
                    raise ExperimentRejectedError(str(exc)) from None
                run = self._runs[experiment.key] = _Run(experiment, ticket, execution, time.monotonic())
                log.info("running experiment %s (execution %s)", experiment.key, execution)
        return run

    def _wait(self, run: _Run, instance: ObservableCommandInstance) -> Observation:
        """Poll the lab until the run's observation comes back, reporting estimated progress."""
        reported = -1.0
        while not self._stopping.is_set():
            with self._lock:
                observation = self.lab.poll(run.ticket)
            if observation is not None:
                with self._lock:
                    self._record(run)
                return observation
            progress, remaining = self._estimate(run)
            if progress - reported >= 0.01:  # each report is a message to every subscriber: not every poll
                # sila2 defines progress's setter apart from its getter, which mypy does not follow
                instance.progress = progress  # type: ignore[misc]
                instance.estimated_remaining_time = timedelta(seconds=remaining)
                reported = progress
            self._stopping.wait(self.poll_s)
        raise RuntimeError("the SiLA lab server is stopping; start it again and poll (or resubmit) the experiment")

    def _estimate(self, run: _Run) -> tuple[float, float]:
        """(progress, seconds left) from the elapsed time and the mean duration of recent runs."""
        expected = sum(self._durations) / len(self._durations) if self._durations else self.expected_s
        elapsed = time.monotonic() - run.started
        return min(0.95, elapsed / expected), max(0.0, expected - elapsed)

    def _record(self, run: _Run) -> None:
        """Remember the run's length once (joined executions see the same run finish)."""
        if run.seconds is None:
            run.seconds = time.monotonic() - run.started
            if run.seconds > 0.05:  # cached results come back at once and say nothing about a run's length
                self._durations.append(run.seconds)


def _experiment(text: str) -> Experiment:
    try:
        return Experiment.model_validate_json(text)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)[:3]
        raise InvalidExperimentError(f"not a wetloop Experiment: {exc.error_count()} problem(s): {problems}") from None


def _version() -> str:
    try:
        return importlib.metadata.version("wetloop").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "0.1"


class _NoBroadcast:
    """Stands in for sila2's SilaServiceBroadcaster, which its SilaServer builds in __init__ even with
    discovery off: a zeroconf instance listening for mDNS on every interface, never closed. This server
    never announces itself, so it opens no such socket."""

    def __init__(self) -> None:
        self.registered_server_infos: dict[Any, Any] = {}

    def register_server(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SiLA Server Discovery is off for wetloop lab servers")

    def unregister_server(self, *args: Any, **kwargs: Any) -> None:
        pass


class _ExclusivePortGrpc:
    """grpc as sila2's SilaServer sees it while it is built: the same module, except that its gRPC server
    owns its port. gRPC binds with SO_REUSEPORT by default, so a second server on a taken port would
    start and share the traffic instead of failing."""

    def __getattr__(self, name: str) -> Any:
        return getattr(grpc, name)

    @staticmethod
    def server(*args: Any, options: Any = None, **kwargs: Any) -> grpc.Server:
        return grpc.server(*args, options=[*(options or []), ("grpc.so_reuseport", 0)], **kwargs)


def _loopback_sila_server(name: str, description: str) -> SilaServer:
    """A SilaServer built without its zeroconf broadcaster and with an exclusive port (see above).

    Both are module attributes of sila2.server.sila_server, swapped only while the server is built."""
    swaps = {"SilaServiceBroadcaster": _NoBroadcast, "grpc": _ExclusivePortGrpc()}
    with _PATCH_LOCK:
        originals = {k: getattr(_sila_server_module, k) for k in swaps if hasattr(_sila_server_module, k)}
        for k in originals:
            setattr(_sila_server_module, k, swaps[k])
        try:
            return SilaServer(
                server_name=name,
                server_type="WetloopLab",
                server_description=description,
                server_version=_version(),
                server_vendor_url="https://pypi.org/project/wetloop/",
            )
        finally:
            for k, v in originals.items():
                setattr(_sila_server_module, k, v)


def _free_port(host: str) -> int:
    """A port free on `host` now (gRPC cannot report the port it picks itself through sila2)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SilaLabServer:
    """A SiLA 2 server running `lab`'s experiments; it owns `lab` and closes it on `stop`.

    Args:
        lab: the lab that runs the experiments (e.g. `make_lab(spec)` for a local world).
        host: a loopback address (127.0.0.1 or localhost); anything else is refused, because the
            server speaks without TLS.
        port: the TCP port; 0 picks a free one (read it from `.port` after `start`).
        poll_s: how often a running execution polls the lab.
        expected_s: the run length progress is estimated against until runs on this server have finished.
    """

    def __init__(
        self,
        lab: Lab,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        poll_s: float = 0.05,
        expected_s: float = 5.0,
        name: str = "wetloop lab",
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise LabError(
                f"refusing to serve SiLA on {host!r}: this server has no TLS, so it binds a loopback address only "
                f"({', '.join(sorted(LOOPBACK_HOSTS))}); put a TLS-terminating SiLA server in front for a network"
            )
        self.lab, self.host, self.port = lab, host, port
        description = f"wetloop experiments on world {lab.spec.world!r} (lab {lab.name!r}); insecure loopback, no discovery"
        self._server = _loopback_sila_server(name, description)
        self._runner = _Runner(self._server, lab, poll_s=poll_s, expected_s=expected_s)
        self._server.set_feature_implementation(ExperimentRunnerFeature, self._runner)

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve (returns at once; gRPC serves from its own threads)."""
        for attempt in range(5):  # a port picked free can be taken before we bind it: pick again
            port = self.port or _free_port(self.host)
            try:
                self._server.start_insecure(self.host, port, enable_discovery=False)
            except RuntimeError as exc:
                if self.port or attempt == 4:
                    raise LabError(f"cannot serve SiLA on {self.host}:{port} ({exc}); choose another port") from None
                continue
            self.port = port
            log.info("SiLA lab server for %r on %s (insecure, loopback, discovery off)", self.lab.name, self.address)
            return self
        raise AssertionError("unreachable")

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving (running executions end with an error) and close the lab; safe to call twice."""
        if self._server.running:
            self._server.stop(grace_period=grace_s)
        self.lab.close()

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_world(
    spec: CampaignSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cache_dir: Path | str | None = None,
    workers: int | None = None,
    **server_options: Any,
) -> SilaLabServer:
    """Start a SiLA lab server running `spec`'s local world (`make_lab` with the lab reference dropped)."""
    lab = make_lab(spec.with_overrides(lab=LabRef()), cache_dir=cache_dir, workers=workers)
    try:
        return SilaLabServer(lab, host=host, port=port, **server_options).start()
    except BaseException:
        lab.close()
        raise
