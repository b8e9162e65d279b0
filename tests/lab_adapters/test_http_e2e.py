"""End to end: `wetloop lab serve` in its own process runs real simglucose days (4-hour days) for a
campaign that reaches it over HTTP on 127.0.0.1; then the server is killed (-9) and a new one on the
same cache (in this process, to save a second start-up) still answers for what the first accepted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from tests.agent.test_crash_resume import short_spec
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.runner import Campaign
from wetloop.campaign import LabRef, load_spec
from wetloop.lab_adapters import make_lab
from wetloop.lab_adapters._http_protocol import campaign_id
from wetloop.lab_adapters._http_server import create_app, local_service, serve_in_thread
from wetloop.lab_adapters.http import HttpLab
from wetloop.worlds.simglucose import WorldModelConfig

FAST_WORLD = WorldModelConfig(members=5, hidden=32, layers=2, epochs=10, min_steps=150, particles=4)


class Server:
    """`wetloop lab serve` as a child process; `start()` returns its URL once it answers."""

    def __init__(self, cache_dir: Path, log: Path) -> None:
        self.cache_dir, self.log, self.proc = cache_dir, log, None

    def start(self) -> str:
        cmd = [
            sys.executable,
            "-m",
            "wetloop.agent.cli",
            "lab",
            "serve",
            "--world",
            "simglucose",
            "--port",
            "0",
            "--workers",
            "2",
            "--cache-dir",
            str(self.cache_dir),
        ]
        with open(self.log, "w") as out:  # a file, not a pipe: the access log must never block the server
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            found = re.search(r"wetloop lab server: (http://127\.0\.0\.1:\d+)", self.log.read_text())
            if found and _answers(found.group(1)):
                return found.group(1)
            time.sleep(0.1)
        raise AssertionError("the lab server did not answer in 60 s:\n" + self.log.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/lab", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "server-cache", tmp_path / "server.log")
    try:
        yield s
    finally:
        s.stop(signal.SIGKILL)


def test_a_campaign_runs_through_a_lab_server_in_another_process(tmp_path: Path, server: Server) -> None:
    url = server.start()
    spec = load_spec(short_spec(tmp_path, rounds=2, batch=2)).with_overrides(
        lab=LabRef(adapter="http", options={"base_url": url})
    )
    run_dir = tmp_path / "run"
    with Campaign.create(
        spec, run_dir, settings=AgentSettings(lab_workers=2), world_config=FAST_WORLD, console=Console(quiet=True)
    ) as c:
        assert c.run().done
        keys = sorted(e.key for e in c.store.experiments(c.campaign_id))
        tickets = c.store.submissions(c.campaign_id)
        observed = [r.key for r in c.store.records(c.campaign_id, "observation")]
        observations = c.store.observations(c.campaign_id)
    assert len(keys) == 4 and sorted(tickets) == keys and sorted(observed) == keys
    assert all(
        o.status == "ok" and o.raw["simulator"].startswith("simglucose") and o.raw["pid"] != os.getpid()
        for o in observations.values()
    )
    assert not (run_dir / "lab").exists() or not any((run_dir / "lab").rglob("*.json"))  # nothing simulated locally
    runs = httpx.get(f"{url}/v1/campaigns/{campaign_id(spec)}/runs").json()
    assert runs["started"] == {k: 1 for k in keys} and runs["completed"] == {k: 1 for k in keys}

    server.stop(signal.SIGKILL)  # the lab dies; a new one starts on the same cache, on another port
    service = local_service("simglucose", cache_dir=server.cache_dir, workers=1)
    with serve_in_thread(create_app(service)) as url:
        moved = spec.with_overrides(lab=LabRef(adapter="http", options={"base_url": url}))
        with make_lab(moved) as lab:
            assert isinstance(lab, HttpLab)
            again = lab.poll(tickets[keys[0]])  # the old ticket, answered by the new server from its cache
        after = httpx.get(f"{url}/v1/campaigns/{campaign_id(spec)}/runs").json()
    first = observations[keys[0]]
    assert again is not None and (again.trajectory, again.readouts) == (first.trajectory, first.readouts)
    assert (first.raw["cache"], again.raw["cache"]) == ("miss", "hit")
    assert after["completed"] == {k: 1 for k in keys}  # nothing ran again
