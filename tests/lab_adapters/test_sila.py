"""SilaLab against real SiLA 2 servers on 127.0.0.1 (sila2 over gRPC; no mocks of the transport).

The servers wrap SimulatedLab (a fast toy world) for the protocol tests, and real simglucose days
(4 hours) for the end-to-end campaign. Every server is started and stopped by a fixture.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sila2", reason='the SiLA adapter needs its extra: pip install "wetloop[sila]"')

from sila2.client import SilaClient  # noqa: E402
from sila2.framework import DefinedExecutionError  # noqa: E402

from tests.agent.conftest import FAST_WORLD  # noqa: E402
from tests.agent.fakes import toy_glucose_day  # noqa: E402
from tests.agent.test_crash_resume import short_spec  # noqa: E402
from wetloop.agent import Campaign  # noqa: E402
from wetloop.campaign import (  # noqa: E402
    CampaignStore,
    Experiment,
    Intervention,
    LabRef,
    Observation,
    default_spec_path,
    load_spec,
)
from wetloop.lab_adapters import (  # noqa: E402
    ExperimentRejected,
    LabError,
    LabUnreachable,
    MalformedResult,
    SimulatedLab,
    WorldMismatch,
    make_lab,
    wait_for,
)
from wetloop.lab_adapters.sila import FEATURE_XML, SilaLab, SilaLabServer, serve_world  # noqa: E402
from wetloop.worlds.simglucose import glucose_readouts  # noqa: E402

SPEC = load_spec(default_spec_path())


def experiment(basal: float = 0.5, carb_ratio: float = 20.0) -> Experiment:
    x = Intervention(values={"basal": basal, "carb_ratio": carb_ratio})
    return Experiment(campaign_id="c-sila", round=1, intervention=x, approved_by="test")


def toy_lab(polls_until_done: int = 0) -> SimulatedLab:
    return SimulatedLab(SPEC, lambda x: toy_glucose_day(SPEC, x), polls_until_done=polls_until_done)


@pytest.fixture()
def server():
    """A server whose runs take ~20 of its polls (1 s), so progress can be seen."""
    with SilaLabServer(toy_lab(polls_until_done=20), poll_s=0.05, expected_s=0.5) as running:
        yield running


@pytest.fixture()
def lab(server, tmp_path):
    with SilaLab(SPEC, port=server.port, cache_dir=tmp_path / "client") as client:
        yield client


def test_a_run_reports_progress_and_returns_the_worlds_observation(server, lab) -> None:
    e = experiment()
    ticket = lab.submit(e)
    seen = []
    while (obs := lab.poll(ticket)) is None:
        seen.append(lab.progress(ticket))
        time.sleep(0.05)
    progress = [p for p in seen if p is not None]
    assert progress and all(0.0 <= p <= 0.95 for p in progress) and progress == sorted(progress)
    assert max(progress) > 0.2  # it moved while the world ran
    assert lab.progress(ticket) == 1.0
    expected = glucose_readouts(np.asarray(toy_glucose_day(SPEC, e.intervention).series["glucose"]), SPEC)
    assert obs.status == "ok" and obs.lab == "sila" and obs.readouts == pytest.approx(expected)
    assert obs.raw["sila"]["execution"] == ticket.lab_ref and obs.raw["sila"]["lab"] == "simulated"


def test_submit_is_idempotent_across_calls_clients_and_runs_once(server, lab, tmp_path) -> None:
    e = experiment()
    first = lab.submit(e)
    assert lab.submit(e) == first
    with SilaLab(SPEC, port=server.port) as other:  # another client (e.g. after a crash) joins the same run
        assert other.submit(e).lab_ref == first.lab_ref
        [theirs] = wait_for(other, [first], timeout_s=10)
    [ours] = wait_for(lab, [first], timeout_s=10)
    assert ours.readouts == theirs.readouts
    assert server.lab.runs == {e.key: 1}


def test_hard_limits_are_checked_before_anything_reaches_the_server(server, lab) -> None:
    with pytest.raises(ExperimentRejected, match="basal"):
        lab.submit(experiment(basal=9.0))
    assert server.lab.runs == {}


def test_cancel_stops_the_run_and_a_resubmission_runs_again(server, lab) -> None:
    e = experiment()
    ticket = lab.submit(e)
    lab.cancel(ticket)
    assert lab.poll(ticket).status == "cancelled"
    with SilaClient("127.0.0.1", server.port, insecure=True) as raw:
        assert raw.ExperimentRunner.FindExperiment(e.key).ExecutionUUID == ""  # the server forgot the run
    again = lab.submit(e)
    assert again.lab_ref != ticket.lab_ref
    assert wait_for(lab, [again], timeout_s=10)[0].status == "ok"
    assert server.lab.runs == {e.key: 2}


def test_a_restarted_client_reattaches_and_a_restarted_server_reruns_from_the_journal(tmp_path) -> None:
    e = experiment()
    with SilaLabServer(toy_lab(polls_until_done=5)) as first:
        port = first.port
        with SilaLab(SPEC, port=port, cache_dir=tmp_path / "client") as lab:
            ticket = lab.submit(e)
        with SilaLab(SPEC, port=port, cache_dir=tmp_path / "client") as lab:  # a new client: same run
            assert wait_for(lab, [ticket], timeout_s=10)[0].status == "ok"
        assert first.lab.runs == {e.key: 1}
    with SilaLabServer(toy_lab(), port=port) as second:  # the server restarted and knows nothing
        with SilaLab(SPEC, port=port, cache_dir=tmp_path / "client") as lab:
            assert wait_for(lab, [ticket], timeout_s=10)[0].status == "ok"
        assert second.lab.runs == {e.key: 1}  # submitted again from the client's journal


def test_a_server_for_another_world_is_refused_before_submitting(server) -> None:
    other = SPEC.with_overrides(world_options={**SPEC.world_options, "patient": "adult#001"})
    with pytest.raises(WorldMismatch, match="adult#001"):
        SilaLab(other, port=server.port)


def test_a_result_for_another_experiment_is_malformed_with_its_raw_payload() -> None:
    class Mislabelled(SimulatedLab):
        def _poll(self, ticket):
            obs = super()._poll(ticket)
            return None if obs is None else obs.model_copy(update={"experiment_key": "someone-else"})

    with SilaLabServer(Mislabelled(SPEC, lambda x: toy_glucose_day(SPEC, x))) as server, SilaLab(SPEC, port=server.port) as lab:
        ticket = lab.submit(experiment())
        deadline = time.monotonic() + 10
        with pytest.raises(MalformedResult) as caught:
            while lab.poll(ticket) is None and time.monotonic() < deadline:
                time.sleep(0.05)
    assert caught.value.experiment_key == ticket.experiment_key
    assert caught.value.raw["experiment_key"] == "someone-else" and "someone-else" in caught.value.problem


def test_the_server_speaks_plain_sila_and_refuses_unreadable_experiments(server) -> None:
    with SilaClient("127.0.0.1", server.port, insecure=True) as raw:
        fqi = "io.wetloop/experiments/ExperimentRunner/v1"
        assert "RunExperiment" in raw.SiLAService.GetFeatureDefinition(fqi).FeatureDefinition
        assert fqi in raw.SiLAService.ImplementedFeatures.get()
        run = raw.ExperimentRunner.RunExperiment("{not json")
        deadline = time.monotonic() + 5
        while not run.done and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(DefinedExecutionError) as caught:
            run.get_responses()
    assert caught.value.identifier == "InvalidExperiment"
    assert FEATURE_XML.is_file()


def test_loopback_only_discovery_off_and_an_absent_server_is_unreachable() -> None:
    with pytest.raises(LabError, match="loopback"):
        SilaLabServer(toy_lab(), host="0.0.0.0")
    with pytest.raises(LabError, match="loopback"):
        SilaLab(SPEC, host="192.0.2.1")
    before = {t.ident for t in threading.enumerate()}
    with SilaLabServer(toy_lab()):
        started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert not any("_run_loop" in name for name in started), started  # no zeroconf event loop (mDNS)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(LabUnreachable, match=str(free)):
        SilaLab(SPEC, port=free, connect_timeout_s=0.3)


def test_a_taken_port_is_refused_not_shared() -> None:
    """gRPC binds with SO_REUSEPORT by default; a lab server must own its port instead."""
    with SilaLabServer(toy_lab()) as first:
        second = SilaLabServer(toy_lab(), port=first.port)
        with pytest.raises(LabError, match="choose another port"):
            second.start()
        second.lab.close()


def test_a_server_that_goes_away_mid_run_is_unreachable_not_silent() -> None:
    server = SilaLabServer(toy_lab(polls_until_done=10_000)).start()
    try:
        lab = SilaLab(SPEC, port=server.port)
        ticket = lab.submit(experiment())
        assert lab.poll(ticket) is None
    finally:
        server.stop()  # stopped even when connecting fails
    with lab:
        with pytest.raises(LabUnreachable):
            for _ in range(50):
                lab.poll(ticket)
                time.sleep(0.05)


def test_the_cli_serves_a_spec_until_interrupted(tmp_path) -> None:
    spec_path = short_spec(tmp_path, rounds=1, batch=1)
    command = [
        sys.executable,
        "-m",
        "wetloop.agent.cli",
        "lab",
        "serve-sila",
        "--spec",
        str(spec_path),
        "--port",
        "0",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"on 127\.0\.0\.1:(\d+)", line).group(1))
        with SilaLab(load_spec(spec_path), port=port) as lab:
            assert lab.server_world["world_options"]["hours"] == 4
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running, whatever the test's outcome
            proc.wait()
            raise
    assert code == 0, proc.stderr.read()[-2000:]


# -- a whole campaign through SiLA ---------------------------------------------------------------
@pytest.fixture()
def simglucose_server(tmp_path):
    spec = load_spec(short_spec(tmp_path, rounds=2, batch=2))
    server = serve_world(spec, cache_dir=tmp_path / "server-lab", workers=2)
    yield spec, server
    server.stop()


def test_a_short_campaign_runs_end_to_end_through_a_sila_server(simglucose_server, tmp_path, quiet) -> None:
    spec, server = simglucose_server
    spec = spec.with_overrides(lab=LabRef(adapter="sila", options={"host": "127.0.0.1", "port": server.port}))
    with make_lab(spec, cache_dir=tmp_path / "probe") as probe:
        assert isinstance(probe, SilaLab)
    with Campaign.create(spec, tmp_path / "run", world_config=FAST_WORLD, console=quiet) as campaign:
        assert campaign.run().done
    keys = audit(tmp_path / "run", lab="sila")
    assert server.lab.completed_runs() == {k: 1 for k in keys}  # each day simulated once, on the server


def audit(run_dir: Path, lab: str) -> list[str]:
    """Every approved experiment submitted once and observed once, ok, by `lab`; returns their keys."""
    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        keys = sorted(e.key for e in store.experiments(cid))
        assert len(keys) == 4 == len(set(keys))
        assert sorted(r.key for r in store.records(cid, "submission")) == keys
        observations = store.records(cid, "observation")
        assert sorted(r.key for r in observations) == keys
        assert all(Observation.model_validate(r.payload).status == "ok" for r in observations)
        assert {r.payload["lab"] for r in observations} == {lab}
        assert not store.records(cid, "quarantine")
    return keys


@pytest.fixture()
def quiet():
    from rich.console import Console

    return Console(stderr=True, quiet=True)
