"""The lab server of the wetloop HTTP lab protocol, and its socket helpers (`pip install "wetloop[server]"`).

    service = local_service("simglucose")          # a LabService in front of a built-in world
    sock = bind("127.0.0.1", 8765)                 # TCP_NODELAY-ready socket (port 0: a free one)
    serve(create_app(service), sock)               # until Ctrl-C

`FaultInjector` / `FaultRates` wrap an app in seeded transport faults (for tests and the bench).
Other servers of the project (the web review page) use `bind` and `url_of` too.
"""

from __future__ import annotations

from ._http_faults import FaultInjector, FaultRates
from ._http_server import bind, create_app, is_loopback, local_service, serve, serve_in_thread, url_of

__all__ = [
    "FaultInjector",
    "FaultRates",
    "bind",
    "create_app",
    "is_loopback",
    "local_service",
    "serve",
    "serve_in_thread",
    "url_of",
]
