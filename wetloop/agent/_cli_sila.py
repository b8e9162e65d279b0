"""`wetloop lab serve-sila`: a built-in world behind a SiLA 2 server (added to the `lab` group)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from wetloop.campaign import default_spec_path, load_spec
from wetloop.lab_adapters import LabError

__all__ = ["register_sila_commands", "serve_sila_cmd"]


def serve_sila_cmd(
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="The campaign spec whose world the server runs "
            "(default: the built-in virtual-patient campaign); clients must use the same world, world_options, seed and variables.",
        ),
    ] = None,
    world: Annotated[
        str | None, typer.Option(help="Check that the spec's world is this one (a registered world's name).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Loopback address to listen on (127.0.0.1 or localhost): the server has no TLS.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port; it is printed).")] = 50052,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="The world's cache and journal (default: WETLOOP_LAB_CACHE_DIR).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes simulating in parallel (default: WETLOOP_LAB_WORKERS, else one per CPU).")
    ] = None,
) -> None:
    """Serve a campaign's world over SiLA 2 (feature ExperimentRunner; insecure loopback, discovery off)."""
    try:
        from wetloop.lab_adapters.sila import serve_world
    except ImportError as exc:
        raise LabError(
            f'`lab serve-sila` needs the optional extra "sila" ({exc.name} is missing): pip install "wetloop[sila]"'
        ) from None
    spec = load_spec(spec_file or default_spec_path())
    if world is not None and world != spec.world:
        raise LabError(f"the spec runs world {spec.world!r}, not {world!r}; pass --spec with a campaign spec for {world!r}")
    # Ctrl-C (or SIGTERM) only sets an event, whenever it comes: one that arrives while the server is
    # starting can no longer leave its gRPC threads running with nothing left to stop them. A second
    # Ctrl-C interrupts as usual, should stopping ever hang.
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = serve_world(spec, host=host, port=port, cache_dir=cache_dir, workers=workers)
        try:
            print(
                f"wetloop SiLA lab server on {server.address} (world {spec.world}, spec {spec.name}; insecure loopback, discovery off); "
                f"point a spec at it with lab: {{adapter: sila, options: {{host: {server.host}, port: {server.port}}}}}. Ctrl-C stops it.",
                flush=True,
            )
            stop.wait()
        finally:
            server.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def register_sila_commands(app: typer.Typer) -> None:
    """Add `serve-sila` to the `lab` group of `app` (registered by `register_lab_commands` first)."""
    groups = [g.typer_instance for g in app.registered_groups if g.name == "lab" and g.typer_instance is not None]
    if not groups:
        raise RuntimeError("register the `lab` group (register_lab_commands) before register_sila_commands")
    groups[0].command("serve-sila")(serve_sila_cmd)
