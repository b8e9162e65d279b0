"""How `wetloop bench adapters` starts a loopback lab server for each protocol adapter.

The contract (every adapter module named in `ADAPTERS` follows it):

    # in wetloop/lab_adapters/<module>.py, next to the adapter class
    @contextlib.contextmanager
    def serve_for_bench(spec: CampaignSpec, work_dir: Path, *, workers: int | None = None) -> Iterator[dict[str, Any]]:
        '''Start a server of this protocol on 127.0.0.1 (a free port) that runs `spec.world`
        in-process behind it; yield the `spec.lab.options` that reach it; stop it on exit.'''

Rules for an implementation:

1. The server runs the spec's LOCAL world: build it with
   `make_lab(spec.with_overrides(lab=LabRef()), cache_dir=server_lab_dir(work_dir), workers=workers)`
   (the bench never shares the simulator cache between runs, so each adapter simulates the same days).
2. Bind 127.0.0.1 only, on a port the OS picks (port 0, or bind-then-read); start in a thread or a
   subprocess; return (yield) only when the server answers, and stop everything it started in the
   `finally` of the context manager, also when the body raised.
3. Yield a plain dict of JSON-able options: the bench builds
   `spec.with_overrides(lab=LabRef(adapter=<name>, options=<the dict>))` and runs a campaign with it,
   so `make_lab` builds `AdapterClass(spec, **options, cache_dir=..., workers=...)`.
4. When this machine cannot run the server (a missing binary, a platform without the needed
   support), raise `BenchServerUnavailable(adapter, reason)` before yielding: the bench prints the
   reason and skips the adapter. A missing optional extra needs nothing special: the module's
   top-level import fails with ImportError, and the bench reports the extra to install.

`bench_server(adapter)` finds the context manager of an adapter by its `ADAPTERS` entry.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._registry import ADAPTERS
from .errors import BenchServerUnavailable

__all__ = ["BenchServe", "bench_server", "server_lab_dir", "BenchServerUnavailable"]

BenchServe = Callable[..., contextlib.AbstractContextManager[dict[str, Any]]]
"""`serve_for_bench(spec, work_dir, *, workers=None)`: a context manager yielding lab options."""


def bench_server(adapter: str) -> BenchServe:
    """The `serve_for_bench` of the adapter registered as `adapter` in `ADAPTERS`.

    Raises `BenchServerUnavailable` when the adapter is unknown, its optional extra is missing (the
    reason names the extra to install), or its module offers no `serve_for_bench`.
    """
    if adapter not in ADAPTERS:
        raise BenchServerUnavailable(adapter, f"no adapter of that name; known: {', '.join(sorted(ADAPTERS))}")
    target, extra = ADAPTERS[adapter]
    module_name = target.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        install = f'pip install "wetloop[{extra}]"' if extra else "pip install wetloop"
        raise BenchServerUnavailable(adapter, f"{exc.name or module_name} is missing: {install}") from None
    serve = getattr(module, "serve_for_bench", None)
    if serve is None:
        raise BenchServerUnavailable(
            adapter, f"{module_name} has no serve_for_bench(spec, work_dir) (see lab_adapters/_bench_servers.py)"
        )
    return serve


def server_lab_dir(work_dir: Path | str) -> Path:
    """Where a bench server keeps its lab's cache and journal inside the bench's `work_dir`."""
    return Path(work_dir) / "server-lab"
