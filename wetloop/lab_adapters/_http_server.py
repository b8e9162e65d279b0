"""The wetloop lab server: any built-in world behind the HTTP lab protocol (FastAPI + uvicorn).

    create_app(service, token) the FastAPI app (OpenAPI schema at /openapi.json, docs at /docs); with a
                               token, /v1/ requests need `Authorization: Bearer <token>`
    local_service(world, ...)  a LabService running `world` through `make_lab`, with its cache and journal
    bind(host, port), url_of   a listening socket (port 0: a free one) and the URL it answers on
    serve(app, sock)           serve until interrupted (`wetloop lab serve`)
    serve_in_thread(app)       a loopback server for tests and the bench: yields its base URL, stops on exit

Needs the `server` extra (fastapi, uvicorn); the client (`HttpLab`) does not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from wetloop.campaign import CampaignSpec, Experiment, load_spec

from ._http_protocol import ID_PATTERN, PROTOCOL, VERSION, CampaignOut, ExperimentOut, LabInfo, Problem, RunsOut, TicketOut
from ._http_service import LabService, Refused
from ._registry import known_worlds, make_lab
from ._settings import LabSettings
from .errors import LabError

__all__ = ["create_app", "local_service", "serve", "serve_in_thread", "bind", "url_of", "is_loopback"]

DESCRIPTION = f"""The wetloop lab protocol ({PROTOCOL}, version {VERSION}): submit an experiment, poll it, cancel it.

1. `PUT /v1/campaigns/{{campaign}}` with the campaign spec (once; idempotent).
2. `PUT /v1/campaigns/{{campaign}}/experiments/{{key}}` with the experiment: 201 accepted, 200 already
   accepted (the same ticket; it never runs twice), 422 `rejected` with the reasons (nothing ran).
3. `GET` the same path until `state` is `done`; the `observation` is the result. Results are kept.
4. `DELETE` it to cancel. 4xx replies carry a `Problem` (`error`, `message`, `reasons`).
"""

Campaign = Annotated[str, PathParam(pattern=ID_PATTERN, description="campaign id (the client derives it from the spec)")]
Key = Annotated[str, PathParam(pattern=ID_PATTERN, description="the experiment's idempotency key")]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown campaign or experiment"},
    409: {"model": Problem, "description": "campaign id registered with another spec"},
    422: {"model": Problem, "description": "rejected (hard limits), invalid spec, wrong world or key mismatch"},
}


def create_app(service: LabService, token: str | None = None) -> FastAPI:
    """The protocol's routes over `service`; closing the app (lifespan end) closes its labs. With a
    `token`, every `/v1/` request must carry `Authorization: Bearer <token>` (else 401); the schema and
    docs stay open."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="wetloop lab protocol", version=str(VERSION), description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    app.add_exception_handler(Refused, _problem_reply)
    if token is not None:
        app.middleware("http")(_bearer_guard(token))
    _routes(app, service)
    return app


def _bearer_guard(token: str) -> Callable[..., Any]:
    expected = f"Bearer {token}".encode()

    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        given = request.headers.get("authorization", "").encode()
        if request.url.path.startswith("/v1/") and not secrets.compare_digest(given, expected):
            problem = Problem(
                error="unauthorized", message="this lab asks for a token: send Authorization: Bearer <the token it printed>"
            )
            return JSONResponse(problem.model_dump(mode="json"), status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    return guard


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _problem_reply(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return JSONResponse(exc.problem.model_dump(mode="json"), status_code=exc.status)


def _routes(app: FastAPI, service: LabService) -> None:
    """One small handler per route of the protocol, each a call into `service`."""

    @app.get("/v1/lab", response_model=LabInfo, tags=["lab"])
    def get_lab() -> LabInfo:
        """Who answers and which protocol version it speaks; clients check `version` first."""
        return service.info()

    @app.put(
        "/v1/campaigns/{campaign}",
        response_model=CampaignOut,
        responses={201: {"model": CampaignOut}, **PROBLEMS},
        tags=["campaigns"],
    )
    def put_campaign(campaign: Campaign, spec: CampaignSpec, response: Response) -> CampaignOut:
        """Register a campaign's spec (its world options and hard limits); idempotent."""
        out = service.register(campaign, spec)
        response.status_code = 201 if out.created else 200
        return out

    @app.put(
        "/v1/campaigns/{campaign}/experiments/{key}",
        response_model=TicketOut,
        responses={201: {"model": TicketOut}, **PROBLEMS},
        tags=["experiments"],
    )
    def put_experiment(campaign: Campaign, key: Key, experiment: Experiment, response: Response) -> TicketOut:
        """Submit an experiment: checked against the hard limits, then started once per key."""
        out = service.submit(campaign, key, experiment)
        response.status_code = 201 if out.created else 200
        return out

    @app.get("/v1/campaigns/{campaign}/experiments/{key}", response_model=ExperimentOut, responses=PROBLEMS, tags=["experiments"])
    def get_experiment(campaign: Campaign, key: Key) -> ExperimentOut:
        """Poll: `running`, or `done` with the observation (read it as often as needed)."""
        return service.status(campaign, key)

    @app.delete("/v1/campaigns/{campaign}/experiments/{key}", response_model=TicketOut, responses=PROBLEMS, tags=["experiments"])
    def delete_experiment(campaign: Campaign, key: Key) -> TicketOut:
        """Cancel (idempotent); a later PUT of the key runs it again."""
        return service.cancel(campaign, key)

    @app.get("/v1/campaigns/{campaign}/runs", response_model=RunsOut, responses=PROBLEMS, tags=["campaigns"])
    def get_runs(campaign: Campaign) -> RunsOut:
        """Audit: how often each key was started by this server and run by its lab."""
        return service.runs(campaign)


def local_service(
    world: str | None = None,
    *,
    spec_file: Path | str | None = None,
    cache_dir: Path | str | None = None,
    workers: int | None = None,
) -> LabService:
    """A LabService that runs `world` in this machine (`make_lab`), keeping its cache, journal and
    the server's own state (specs, tickets) under `cache_dir` (default: `WETLOOP_LAB_CACHE_DIR`)."""
    lab_spec = load_spec(spec_file) if spec_file is not None else None
    world = lab_spec.world if lab_spec is not None else world
    servable = [w for w in known_worlds() if w != "simulated"]
    if world is None or world not in servable:
        raise LabError(f"cannot serve world {world!r}; registered worlds: {', '.join(servable)}. Pick one with --world.")
    root = Path(cache_dir) if cache_dir is not None else LabSettings().cache_dir
    factory: Callable[[CampaignSpec], Any] = lambda spec: make_lab(spec, cache_dir=root, workers=workers)  # noqa: E731
    return LabService(factory, world=world, state_dir=root / "http-server", lab_spec=lab_spec)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound TCP socket (port 0: the OS picks a free one); uvicorn listens on it."""
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such sockets; without it
    # a reply's headers and body leave in two writes and the body waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class QuietPolls(logging.Filter):
    """Drops the access-log line of a successful poll (`GET .../experiments/{key}` answered 200): a
    campaign polls every running experiment several times a second, which buried every other line
    (882 lines for 9 experiments). Submissions, cancellations and every error are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 5:
            _, method, path, _, status = args
            return not (method == "GET" and "/experiments/" in str(path) and status == 200)
        return True


def serve(app: Any, sock: socket.socket, *, log_level: str = "info") -> None:
    """Serve `app` on the bound socket until interrupted (Ctrl-C / SIGTERM); labs close on the way out."""
    logging.getLogger("uvicorn.access").addFilter(QuietPolls())
    uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on")).run(sockets=[sock])


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> Iterator[str]:
    """Serve `app` from a thread of this process; yield the base URL once it answers; stop on exit."""
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="wetloop-lab-server")
    thread.start()
    try:
        _wait_started(server, thread)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise LabError("the lab server did not start; see its log above")
        time.sleep(0.01)
