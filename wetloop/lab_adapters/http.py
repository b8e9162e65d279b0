"""`HttpLab`: a lab in another process or on another machine, reached through the wetloop lab protocol.

The protocol (version 1; the server publishes its OpenAPI schema at `/openapi.json`). JSON bodies;
`{campaign}` is an id the client derives from the spec (`<name>-<hash>`), `{key}` an experiment's
idempotency key (`Experiment.key`).

    GET    /v1/lab                                   -> LabInfo {protocol, version, lab, world, limits}
    PUT    /v1/campaigns/{campaign}                  <- CampaignSpec        -> 201 | 200 CampaignOut
    PUT    /v1/campaigns/{campaign}/experiments/{key} <- Experiment         -> 201 new | 200 known: TicketOut
    GET    /v1/campaigns/{campaign}/experiments/{key}                      -> ExperimentOut {state, observation}
    DELETE /v1/campaigns/{campaign}/experiments/{key}                      -> TicketOut {state: cancelled}
    GET    /v1/campaigns/{campaign}/runs                                   -> RunsOut (audit: runs per key)

4xx replies are a `Problem` {error, message, reasons}: 422 `rejected` (hard limits; nothing ran),
`invalid_spec`, `wrong_world`, `key_mismatch`; 404 `unknown_campaign`, `unknown_experiment`; 409
`campaign_conflict`. A server must run each key at most once (a repeated PUT answers 200 and runs
nothing), check the hard limits itself, and keep results until they are read (and after).

How the client reads failures, three layers apart:

1. Transport (retried with exponential backoff and jitter, then `LabUnreachable`): no reply, a dropped
   connection, a timeout, HTTP 5xx or 429, or a body that is not complete JSON (e.g. cut short).
   Retrying is safe: PUT and DELETE are idempotent, GET has no effect.
2. Protocol (`LabProtocolError`, the campaign stops): JSON that is not the reply the protocol
   describes (e.g. a GET reply without `state`), an unexpected status, another protocol version.
3. Result (`MalformedResult`, quarantined with the raw reply, the experiment marked failed, never fed
   to the model): a well-formed `done` reply whose `observation` is not a valid Observation of this
   experiment: schema errors (a glucose value that is null, series of unequal length), another
   experiment's key, an `ok` result without a finite objective readout, a negative concentration.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from wetloop.campaign import CampaignSpec, Experiment, Observation, Ticket, result_problem

from ._bench_servers import server_lab_dir
from ._http_protocol import (
    VERSION,
    CampaignOut,
    ExperimentEnvelope,
    LabInfo,
    Problem,
    TicketOut,
    campaign_id,
    campaign_path,
    experiment_path,
    lab_path,
    local_spec,
)
from ._protocol import Lab
from ._settings import LabSettings
from .errors import (
    BenchServerUnavailable,
    ExperimentRejected,
    LabError,
    LabProtocolError,
    LabUnreachable,
    MalformedResult,
    UnknownTicket,
    WorldMismatch,
)

__all__ = ["HttpLab", "serve_for_bench"]

_REF = re.compile(r"^v1/campaigns/[A-Za-z0-9][A-Za-z0-9_.-]*/experiments/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RETRY_STATUS = {429, 500, 502, 503, 504}
M = TypeVar("M", bound=BaseModel)


class _Transient(Exception):
    """A reply that did not (fully) arrive: try again."""


class HttpLab(Lab):
    """A lab behind the wetloop lab protocol at `base_url` (see the module docstring).

    Args:
        spec: the campaign; sent to the lab once (PUT /v1/campaigns/{id}) before the first experiment.
        base_url: where the lab server answers, e.g. `http://127.0.0.1:8765`.
        client: an `httpx.Client` to send through (tests hand one with a `MockTransport`); it keeps
            its own timeouts. Default: a new one with `timeout_s`, closed by `close()`.
        timeout_s: per request (connect, read, write) of the default client; a slower reply counts as
            lost and is retried.
        retries: further attempts after a transient failure, with exponential backoff from `backoff_s`
            (doubling, jittered, at most `max_backoff_s`).
        name: the lab's name, written on its tickets.
        token: sent as `Authorization: Bearer <token>` to a server that asks for one (default:
            `WETLOOP_LAB_TOKEN`; never in the spec, which is stored with the campaign).
    """

    def __init__(
        self,
        spec: CampaignSpec,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        retries: int = 6,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        name: str = "http",
        token: str | None = None,
    ) -> None:
        super().__init__(spec, name)
        if "token" in spec.lab.options:
            raise LabError("lab.options.token: a spec is stored with its campaign; give the lab's token in WETLOOP_LAB_TOKEN")
        if retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("HttpLab needs retries >= 0, timeout_s > 0 and backoff_s >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout_s, self.retries, self.backoff_s, self.max_backoff_s = timeout_s, retries, backoff_s, max_backoff_s
        self.campaign = campaign_id(spec)
        self._client, self._owns_client = client or _default_client(timeout_s), client is None
        secret = LabSettings().token
        token = token if token is not None else (secret.get_secret_value() if secret is not None else None)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._registered = False
        self.requests_sent = 0  # HTTP requests sent, retries included (the bench reports them)

    # -- the protocol ---------------------------------------------------------------------------
    def _start(self, experiment: Experiment) -> Ticket:
        self._register()
        path = experiment_path(self.campaign, experiment.key)
        status, body = self._request("PUT", path, experiment.model_dump(mode="json"))
        if status == 404 and self._problem(body, "unknown_campaign"):  # the lab lost its state: register again
            self._registered = False
            self._register()
            status, body = self._request("PUT", path, experiment.model_dump(mode="json"))
        if status == 422 and (problem := self._problem(body, "rejected")) is not None:
            raise ExperimentRejected(problem.reasons or (problem.message,), experiment=experiment)
        self._reply(TicketOut, status, body, path, ok=(200, 201))
        return Ticket(experiment_key=experiment.key, lab=self.name, lab_ref=path)

    def _poll(self, ticket: Ticket) -> Observation | None:
        path = self._ref(ticket)
        status, body = self._request("GET", path)
        if status == 404:
            raise UnknownTicket(ticket, f"the lab at {self.base_url} says: {self._message(body)}")
        envelope = self._reply(ExperimentEnvelope, status, body, path)
        if envelope.experiment_key != ticket.experiment_key:
            raise LabProtocolError(
                self._url(path), status, body, f"asked for {ticket.experiment_key}, got {envelope.experiment_key}"
            )
        return None if envelope.state == "running" else self._result(ticket.experiment_key, envelope.observation, body)

    def _cancel(self, ticket: Ticket) -> None:
        path = self._ref(ticket)
        status, body = self._request("DELETE", path)
        if status == 404:
            raise UnknownTicket(ticket, f"the lab at {self.base_url} says: {self._message(body)}")
        self._reply(TicketOut, status, body, path)

    def _shutdown(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- public extras --------------------------------------------------------------------------
    def info(self) -> LabInfo:
        """The server's LabInfo; raises `LabProtocolError` when it speaks another protocol version."""
        status, body = self._request("GET", lab_path())
        info = self._reply(LabInfo, status, body, lab_path())
        if info.version != VERSION:
            raise LabProtocolError(
                self._url(lab_path()), status, body, f"protocol version {info.version}, this client speaks {VERSION}"
            )
        return info

    # -- results --------------------------------------------------------------------------------
    def _result(self, key: str, data: Any, raw: Any) -> Observation:
        """The Observation in a `done` reply, or `MalformedResult` carrying the reply as received."""
        try:
            observation = Observation.model_validate(data)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:5])
            raise MalformedResult(key, raw, f"not a valid observation ({detail})") from None
        problem = result_problem(key, observation, self.spec)
        if problem is not None:
            raise MalformedResult(key, raw, problem)
        return observation

    # -- campaigns ------------------------------------------------------------------------------
    def _register(self) -> None:
        """Check the protocol version and register the campaign's spec, once per instance."""
        if self._registered:
            return
        self.info()
        path = campaign_path(self.campaign)
        status, body = self._request("PUT", path, local_spec(self.spec).model_dump(mode="json"))
        problem = self._problem(body) if status in (409, 422) else None
        if problem is not None and problem.error == "wrong_world":
            raise WorldMismatch(self.base_url, [problem.message])
        if problem is not None:
            raise LabError(f"the lab at {self.base_url} refused campaign {self.campaign}: {problem.message}")
        self._reply(CampaignOut, status, body, path, ok=(200, 201))
        self._registered = True

    # -- requests -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send until a reply arrives whole (status, decoded JSON); transient failures are retried."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(initial=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, body)
        except _Transient as exc:
            raise LabUnreachable(self._url(path), self.retries + 1, str(exc)) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    def _once(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests_sent += 1
        try:
            response = self._client.request(method, self._url(path), json=body, headers=self._headers)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc or 'no reply'}") from exc
        if response.status_code in _RETRY_STATUS:
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code == 401:
            why = "the token sent is not its token" if self._headers else "no token was sent"
            raise LabError(
                f"the lab at {self.base_url} asks for a token and {why}: set WETLOOP_LAB_TOKEN to the token "
                "`wetloop lab serve` printed"
            )
        try:
            return response.status_code, response.json()
        except ValueError as exc:  # cut short or garbled on the way: the transport's fault, not the result's
            raise _Transient(f"HTTP {response.status_code} with an unreadable body ({exc})") from exc

    def _reply(self, model: type[M], status: int, body: Any, path: str, ok: tuple[int, ...] = (200,)) -> M:
        if status not in ok:
            raise LabProtocolError(
                self._url(path), status, body, f"expected HTTP {'/'.join(map(str, ok))}: {self._message(body)}"
            )
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise LabProtocolError(
                self._url(path), status, body, f"not a {model.__name__}: {exc.error_count()} error(s)"
            ) from None

    def _problem(self, body: Any, error: str | None = None) -> Problem | None:
        try:
            problem = Problem.model_validate(body)
        except ValidationError:
            return None
        return problem if error is None or problem.error == error else None

    def _message(self, body: Any) -> str:
        problem = self._problem(body)
        return problem.message if problem is not None else str(body)[:300]

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _ref(self, ticket: Ticket) -> str:
        if not _REF.match(ticket.lab_ref):
            raise UnknownTicket(ticket, "its lab_ref is not an experiment path of the wetloop lab protocol")
        return ticket.lab_ref


def _default_client(timeout_s: float) -> httpx.Client:
    # TCP_NODELAY: a request's headers and body leave in two writes; with Nagle's algorithm the body
    # would wait for the server's (delayed) ACK of the headers, adding up to 40 ms to every PUT.
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return httpx.Client(timeout=timeout_s, transport=httpx.HTTPTransport(socket_options=nodelay))


@contextlib.contextmanager
def serve_for_bench(spec: CampaignSpec, work_dir: Path, *, workers: int | None = None) -> Iterator[dict[str, Any]]:
    """A wetloop lab server for `spec.world` on 127.0.0.1 (a thread of this process; its simulations in
    the lab's worker processes); yields `{"base_url": ...}` (see `_bench_servers`)."""
    try:
        from ._http_server import create_app, local_service, serve_in_thread
    except ImportError as exc:
        raise BenchServerUnavailable("http", f'{exc.name} is missing: pip install "wetloop[server]"') from None
    service = local_service(spec.world, cache_dir=server_lab_dir(work_dir), workers=workers)
    with serve_in_thread(create_app(service)) as url:
        yield {"base_url": url}
