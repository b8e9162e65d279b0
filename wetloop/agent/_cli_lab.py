"""`wetloop lab serve` and `wetloop bench adapters`: registered on the main CLI by `register_lab_commands`."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from wetloop.campaign import default_spec_path, load_spec, world_names

__all__ = ["lab_app", "register_lab_commands"]

lab_app = typer.Typer(
    help="Lab servers: put a built-in world behind a lab protocol (`serve`: the HTTP one).", no_args_is_help=True
)
err = Console(stderr=True)


@lab_app.command("serve")
def serve_cmd(
    world: Annotated[
        str | None, typer.Option(help="Registered world to run behind the server (or give --spec, which names it).")
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="The lab's own spec: its world, world_options and "
            "hard limits; campaigns must match its world_options and stay inside its limits too.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port; the URL is printed).")] = 8765,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Simulated days, journal and server state "
            "(default: WETLOOP_LAB_CACHE_DIR). Restart on the same folder and accepted experiments are kept.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes simulating in parallel (default: WETLOOP_LAB_WORKERS, else one per CPU).")
    ] = None,
    faults: Annotated[
        float,
        typer.Option(
            help="Chaos testing: the chance that a request is dropped, delayed, duplicated "
            "or has its reply cut or its result corrupted (0: off)."
        ),
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the injected faults.")] = 0,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="WETLOOP_LAB_TOKEN",
            help="The token clients must send (Authorization: Bearer); required for any host but loopback, "
            "where one is made up and printed once when not given. Default: WETLOOP_LAB_TOKEN.",
        ),
    ] = None,
) -> None:
    """Serve a built-in world over the wetloop lab protocol (OpenAPI schema at /openapi.json)."""
    from .web import INSTALL_HINT, missing_packages  # the lab server and the review page share the `server` extra

    if missing := missing_packages():
        typer.echo(
            f"`wetloop lab serve` needs the server extra (missing: {', '.join(missing)}); install it with:\n  {INSTALL_HINT}",
            err=True,
        )
        raise typer.Exit(2)
    if world is None and spec_file is None:
        raise typer.BadParameter(
            f"which world should the lab run? Give --world NAME (registered: {', '.join(world_names())}) "
            "or --spec FILE (the lab's own spec, which names its world)",
            param_hint="--world / --spec",
        )
    from wetloop.lab_adapters.http_server import bind, create_app, is_loopback, local_service, serve, url_of

    service = local_service(world, spec_file=spec_file, cache_dir=cache_dir, workers=workers)
    made_up = token is None and not is_loopback(host)
    if made_up:
        token = secrets.token_urlsafe(24)
    app: Any = create_app(service, token)  # the FastAPI app, or the fault injector wrapping it
    if faults > 0:
        from wetloop.lab_adapters.http_server import FaultInjector, FaultRates

        app = FaultInjector(app, FaultRates.uniform(faults), seed=fault_seed)
    sock = bind(host, port)
    url = url_of(sock)
    print(
        f"wetloop lab server: {url} (world {service.world}; schema {url}/openapi.json; "
        f"point a spec at it with lab: {{adapter: http, options: {{base_url: {url}}}}})\n"
        f"limits enforced: {service.enforced_limits()}\n"
        + (
            f"token (shown once; clients set WETLOOP_LAB_TOKEN={token}): every /v1/ request needs Authorization: Bearer"
            if made_up
            else "token: the one given (WETLOOP_LAB_TOKEN or --token); clients send it as WETLOOP_LAB_TOKEN"
            if token is not None
            else f"no token: {host} is this machine only"
        ),
        flush=True,
    )
    serve(app, sock)


def bench_adapters_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    rounds: Annotated[int, typer.Option(help="Rounds of the benchmark campaign.")] = 2,
    batch: Annotated[int, typer.Option(help="Experiments per round.")] = 3,
    hours: Annotated[float, typer.Option(help="Length of each simulated day (short days keep the bench quick).")] = 4.0,
    adapter: Annotated[list[str] | None, typer.Option("--adapter", help="Only this adapter (repeatable; default: all).")] = None,
    workers: Annotated[int, typer.Option(help="Lab worker processes, the same for every run.")] = 2,
    repeat: Annotated[int, typer.Option(min=1, help="Trials per lab, taken in turns; the median is reported.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of every campaign.")] = 0,
    work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's campaigns and servers run.")] = None,
) -> None:
    """Campaign overhead per experiment through each lab adapter, as a ratio to the in-process lab."""
    from .bench_adapters import bench_adapters, print_adapters_bench, short_day

    spec = short_day(load_spec(default_spec_path()).with_overrides(seed=seed), rounds, batch, hours)
    work_dir = work_dir or Path(os.environ.get("WETLOOP_RUNS_DIR", "runs")) / f"bench-adapters-{time.strftime('%Y%m%d-%H%M%S')}"
    from .cli import emit_figures  # cli registers these commands, so it is loaded by now

    figures = bench_adapters(spec, work_dir, adapters=adapter, repeat=repeat, workers=workers, console=err)
    emit_figures(figures, json_out, print_adapters_bench, work_dir)


def register_lab_commands(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `lab serve` to `app` and `adapters` to its `bench` sub-app."""
    app.add_typer(lab_app, name="lab")
    bench_app.command("adapters")(bench_adapters_cmd)
