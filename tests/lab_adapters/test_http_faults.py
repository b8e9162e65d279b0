"""A campaign runs to its end through a real lab server (uvicorn on 127.0.0.1) whose seeded fault layer
drops, delays, duplicates and corrupts at random; then the store and the server are audited.

The world behind the server is the agent tests' fast toy glucose model (not ground truth: this test
is about the protocol, the simglucose end-to-end test is about the world)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.agent.conftest import SPEND_THE_BUDGET
from tests.agent.fakes import toy_glucose_day
from wetloop.agent.cli import app
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, CampaignSpec, LabRef, default_spec_path, load_spec
from wetloop.lab_adapters import SimulatedLab
from wetloop.lab_adapters._http_faults import FAULTS, FaultInjector, FaultRates
from wetloop.lab_adapters._http_protocol import campaign_id
from wetloop.lab_adapters._http_server import create_app, serve_in_thread
from wetloop.lab_adapters._http_service import LabService
from wetloop.worlds.simglucose import WorldModelConfig

FAST_WORLD = WorldModelConfig(members=5, hidden=32, layers=2, epochs=10, min_steps=150, particles=4)
RATES = FaultRates(drop_request=0.08, drop_reply=0.08, delay=0.06, duplicate=0.08, truncate=0.08, corrupt_result=0.2, delay_s=1.0)
TIMEOUT_S = 0.4  # the client's: a delayed reply (1 s) is lost to it


def toy_lab(spec: CampaignSpec) -> SimulatedLab:
    return SimulatedLab(spec, lambda x: toy_glucose_day(spec, x), polls_until_done=2)


@pytest.fixture()
def faulty_lab(tmp_path: Path):
    """A lab server behind the fault layer; yields (base_url, injector); stops it afterwards."""
    service = LabService(toy_lab, world="simglucose", state_dir=tmp_path / "server")
    injector = FaultInjector(create_app(service), RATES, seed=11)
    with serve_in_thread(injector, log_level="critical") as url:
        yield url, injector


def test_a_campaign_survives_a_faulty_lab_and_the_store_is_exact(tmp_path: Path, faulty_lab) -> None:
    url, injector = faulty_lab
    options = {"base_url": url, "timeout_s": TIMEOUT_S, "retries": 12, "backoff_s": 0.02, "max_backoff_s": 0.2}
    spec = load_spec(default_spec_path()).with_overrides(
        budget=Budget(rounds=3, batch=3), lab=LabRef(adapter="http", options=options), at_ceiling=SPEND_THE_BUDGET
    )
    run_dir = tmp_path / "run"
    settings = AgentSettings(poll_interval_s=0.02)
    with Campaign.create(spec, run_dir, settings=settings, world_config=FAST_WORLD, console=Console(quiet=True)) as campaign:
        assert campaign.run().done
        store, cid = campaign.store, campaign.campaign_id
        keys = sorted(e.key for e in store.experiments(cid))
        submissions = sorted(r.key for r in store.records(cid, "submission"))
        observed = [r.key for r in store.records(cid, "observation")]
        observations = {r.key: r.payload for r in store.records(cid, "observation")}
        quarantined = {r.payload["experiment_key"]: r.payload for r in store.records(cid, "quarantine")}
        last_model = store.records(cid, "model")[-1].payload

    # every fault happened, and some results were corrupted
    assert set(injector.counts) == set(FAULTS), injector.counts
    assert injector.corrupted, "no result was corrupted: the test would prove nothing about quarantine"
    put_lost = [
        e for e in injector.events if e.method == "PUT" and "/experiments/" in e.path and e.fault in ("drop_reply", "delay")
    ]
    assert put_lost, "no accepted PUT lost its reply: the retry-after-accept path went untested"
    # each experiment: submitted once, observed once, none lost
    assert len(keys) == 9 == len(set(keys))
    assert submissions == keys
    assert sorted(observed) == keys
    # the server ran each key exactly once, despite retried and duplicated PUTs
    runs = httpx.get(f"{url}/v1/campaigns/{campaign_id(spec)}/runs").json()
    assert runs["started"] == {k: 1 for k in keys} and runs["completed"] == {k: 1 for k in keys}
    # exactly the corrupted results are quarantined, raw payload kept; those experiments failed
    assert set(quarantined) == injector.corrupted
    for key, q in quarantined.items():
        assert q["raw"]["state"] == "done" and q["raw"]["observation"]["experiment_key"] == key and q["reason"]
        assert observations[key]["status"] == "failed" and "quarantined" in observations[key]["message"]
    ok = [k for k in keys if k not in quarantined]
    assert all(observations[k]["status"] == "ok" for k in ok)
    assert last_model["fit"]["n_days"] == len(ok)  # the model saw the good results only

    status = CliRunner().invoke(app, ["status", "--dir", str(run_dir)])
    assert status.exit_code == 0, status.output
    assert all(f"quarantined result of {key}" in status.output for key in quarantined)


def test_fault_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultRates(drop_request=0.6, truncate=0.6)
    assert sum(getattr(FaultRates.uniform(0.3), f) for f in FAULTS) == pytest.approx(0.3)
