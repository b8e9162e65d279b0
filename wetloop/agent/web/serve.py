"""Run the review app with uvicorn on 127.0.0.1 (never another interface), on a free port unless
one is asked for. The URL carries a fresh random token and is announced once; uvicorn's access
log is off, so the token is not printed again with every request.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI

from wetloop.lab_adapters.http_server import bind, url_of

from .._hints import command
from ..errors import ReviewError, RunDirError
from ._desk import ReviewDesk
from .app import close_app, create_app

if TYPE_CHECKING:
    from ..runner import Campaign

__all__ = ["serve_review", "start_server", "RunningServer"]

HOST = "127.0.0.1"


def _bind(port: int) -> socket.socket:
    try:
        return bind(HOST, port)  # the lab server's socket: TCP_NODELAY, so no ~40 ms delayed-ACK stall per page
    except OSError as exc:
        raise ReviewError(
            f"cannot listen on {HOST}:{port} ({exc.strerror}); pick another --port, or leave it out for a free one"
        ) from None


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="off")
    return uvicorn.Server(config)


def _url(sock: socket.socket, token: str) -> str:
    return f"{url_of(sock)}/?token={token}"


@dataclass
class RunningServer:
    """A review server running in a background thread; `stop()` ends it (and waits for a release)."""

    url: str
    token: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        """The address without the token (what a browser shows once the cookie is set)."""
        return self.url.split("/?", 1)[0]

    @property
    def desk(self) -> ReviewDesk:
        return self.app.state.desk

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.desk.wait(timeout)
        close_app(self.app)


def start_server(campaign: Campaign, *, port: int = 0, token: str | None = None, reviewer: str | None = None) -> RunningServer:
    """Serve the review app in a daemon thread; returns once it accepts connections."""
    token = token or secrets.token_urlsafe(32)
    app, sock = create_app(campaign, token, reviewer=reviewer), _bind(port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="wetloop-review-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            where = url_of(sock)
            server.should_exit = True
            thread.join(5)
            sock.close()
            close_app(app)
            raise ReviewError(f"the review server did not start on {where}; see the log above")
        time.sleep(0.02)
    return RunningServer(_url(sock, token), token, app, server, thread)


def serve_review(
    campaign: Campaign, *, port: int = 0, reviewer: str | None = None, announce: Callable[[str], None] = print
) -> None:
    """Serve the review page of `campaign` until Ctrl-C; the URL with its token is announced once.

    A round released on the page keeps running after Ctrl-C until its next review or its end (a
    second Ctrl-C stops it; `wetloop resume` then continues from the last checkpoint)."""
    if campaign.pending_review() is None:
        raise RunDirError(
            f"campaign {campaign.campaign_id} is not waiting for a review; `{command(f'status --dir {campaign.run_dir}')}` says where it stands"
        )
    token = secrets.token_urlsafe(32)
    app, sock = create_app(campaign, token, reviewer=reviewer), _bind(port)
    announce(f"review page (Ctrl-C stops the server): {_url(sock, token)}")
    try:
        _server(app).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises the Ctrl-C it caught
        pass
    try:
        _finish_release(app.state.desk, announce)
    finally:
        close_app(app)


def _finish_release(desk: ReviewDesk, announce: Callable[[str], None]) -> None:
    try:
        if not desk.wait(0):
            announce(
                f"waiting for released round {desk.status().round} to finish (Ctrl-C again stops it; `{command('resume')}` continues)"
            )
            desk.wait()
    except KeyboardInterrupt:
        announce(f"stopped while a round was running; `{command('resume')}` continues it from its last checkpoint")
