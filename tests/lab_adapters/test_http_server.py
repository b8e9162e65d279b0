"""The lab server's own guarantees, through its real FastAPI app (Starlette's TestClient, no network):
idempotent by key, hard limits checked by the server itself, restarts and client crashes survived,
the OpenAPI schema published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wetloop.campaign import CampaignSpec, Experiment, Intervention, LabRef, default_spec_path, load_spec
from wetloop.lab_adapters import LabError, SimulatedLab, wait_for
from wetloop.lab_adapters._http_protocol import campaign_id, local_spec
from wetloop.lab_adapters._http_server import create_app, local_service
from wetloop.lab_adapters._http_service import LabService
from wetloop.lab_adapters.http import HttpLab

SPEC = load_spec(default_spec_path())
CID = campaign_id(SPEC)


def toy(x: Intervention) -> dict[str, float]:
    return {"time_in_range": 1.0 - abs(x.values["basal"] - 0.6)}


class Labs:
    """A lab factory for LabService that keeps what it built, so tests count the world's runs."""

    def __init__(self) -> None:
        self.made: list[SimulatedLab] = []

    def __call__(self, spec: CampaignSpec) -> SimulatedLab:
        self.made.append(SimulatedLab(spec, toy, polls_until_done=1))
        return self.made[-1]

    def runs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lab in self.made:
            for k, n in lab.runs.items():
                out[k] = out.get(k, 0) + n
        return out


def experiment(basal: float = 0.6) -> Experiment:
    return Experiment(
        campaign_id="c1", round=1, intervention=Intervention(values={"basal": basal, "carb_ratio": 20.0}), approved_by="test"
    )


def body(x: Any) -> dict[str, Any]:
    return x.model_dump(mode="json")


@pytest.fixture()
def labs() -> Labs:
    return Labs()


@pytest.fixture()
def client(labs: Labs, tmp_path: Path):
    with TestClient(create_app(LabService(labs, world="simglucose", state_dir=tmp_path / "state"))) as c:
        yield c


def put_campaign(client: TestClient, spec: CampaignSpec = SPEC, cid: str = CID) -> Any:
    return client.put(f"/v1/campaigns/{cid}", json=body(local_spec(spec)))


def test_a_repeated_put_returns_the_same_ticket_and_the_world_runs_once(client: TestClient, labs: Labs) -> None:
    assert put_campaign(client).status_code == 201 and put_campaign(client).status_code == 200
    exp = experiment()
    first = client.put(f"/v1/campaigns/{CID}/experiments/{exp.key}", json=body(exp))
    again = client.put(f"/v1/campaigns/{CID}/experiments/{exp.key}", json=body(exp))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["state"] == "accepted" and again.json()["created"] is False
    assert labs.runs() == {exp.key: 1}
    runs = client.get(f"/v1/campaigns/{CID}/runs").json()
    assert runs["started"] == {exp.key: 1} and runs["completed"] == {exp.key: 1}


def test_the_server_checks_hard_limits_itself(client: TestClient, labs: Labs) -> None:
    put_campaign(client)
    bad = experiment(basal=9.0)  # a client that skips its own check still cannot run it
    reply = client.put(f"/v1/campaigns/{CID}/experiments/{bad.key}", json=body(bad))
    assert reply.status_code == 422
    assert reply.json()["error"] == "rejected" and "basal = 9" in reply.json()["reasons"][0]
    assert labs.runs() == {} and client.get(f"/v1/campaigns/{CID}/experiments/{bad.key}").status_code == 404


def test_the_lab_s_own_limits_apply_on_top_of_the_campaign_s(labs: Labs) -> None:
    narrow = SPEC.model_dump(mode="json")
    narrow["interventions"][0].update(lower=0.1, upper=0.5, start=None)
    service = LabService(labs, world="simglucose", lab_spec=CampaignSpec.model_validate(narrow))
    inside = CampaignSpec.model_validate(narrow)
    with TestClient(create_app(service)) as client:
        assert client.get("/v1/lab").json()["limits"]["basal"] == [0.1, 0.5]
        wide = put_campaign(client)  # a campaign whose limits reach beyond the lab's is refused outright
        assert wide.status_code == 422 and wide.json()["error"] == "invalid_spec"
        assert wide.json()["reasons"] == ["basal [0.05, 3] is not inside [0.1, 0.5]"]
        assert put_campaign(client, inside, campaign_id(inside)).status_code == 201
        exp = experiment(basal=0.6)  # outside both: checked by the server before its lab sees it
        reply = client.put(f"/v1/campaigns/{campaign_id(inside)}/experiments/{exp.key}", json=body(exp))
    assert reply.status_code == 422 and reply.json()["error"] == "rejected"
    assert labs.runs() == {}


@pytest.mark.parametrize(
    "case, status, error",
    [
        ("key_mismatch", 422, "key_mismatch"),
        ("unknown_campaign", 404, "unknown_campaign"),
        ("unknown_experiment", 404, "unknown_experiment"),
        ("conflict", 409, "campaign_conflict"),
        ("wrong_world", 422, "wrong_world"),
    ],
)
def test_problems_are_named(client: TestClient, case: str, status: int, error: str) -> None:
    exp = experiment()
    if case != "unknown_campaign":
        put_campaign(client)
    if case in ("key_mismatch", "unknown_campaign"):
        reply = client.put(f"/v1/campaigns/{CID}/experiments/{'0' * 20 if case == 'key_mismatch' else exp.key}", json=body(exp))
    elif case == "unknown_experiment":
        reply = client.get(f"/v1/campaigns/{CID}/experiments/{exp.key}")
    elif case == "conflict":
        reply = put_campaign(client, SPEC.with_overrides(seed=SPEC.seed + 1))
    else:
        reply = put_campaign(client, SPEC.with_overrides(world="crispr_screen"), "other")
    assert reply.status_code == status and reply.json()["error"] == error and reply.json()["message"]


def test_a_crashed_client_finds_its_results_and_a_restarted_server_its_tickets(labs: Labs, tmp_path: Path) -> None:
    state, exp = tmp_path / "state", experiment()
    with TestClient(create_app(LabService(labs, world="simglucose", state_dir=state))) as c:
        HttpLab(SPEC, "http://testserver", client=c, backoff_s=0).submit(exp)  # ... and the client dies
        later = HttpLab(SPEC, "http://testserver", client=c, backoff_s=0)
        ticket = later.submit(exp)  # resubmitted by the resumed campaign: the same ticket, no new run
        first = wait_for(later, [ticket], timeout_s=5, poll_s=0)[0]
        assert first.status == "ok" and labs.runs() == {exp.key: 1}
    with TestClient(create_app(LabService(labs, world="simglucose", state_dir=state))) as c:
        reply = c.put(f"/v1/campaigns/{CID}/experiments/{exp.key}", json=body(exp))
        assert reply.status_code == 200 and reply.json()["created"] is False  # it knows the key after a restart
        assert c.get(f"/v1/campaigns/{CID}/runs").json()["started"] == {} and labs.runs() == {exp.key: 1}


def test_a_run_the_restarted_lab_forgot_is_run_again_not_lost(labs: Labs, tmp_path: Path) -> None:
    """SimulatedLab keeps nothing on disk: after a server restart its new lab does not know the key.
    The server still has the accepted experiment, so a poll runs it again instead of a 404 forever."""
    state, exp = tmp_path / "state", experiment()
    with TestClient(create_app(LabService(labs, world="simglucose", state_dir=state))) as c:
        ticket = HttpLab(SPEC, "http://testserver", client=c, backoff_s=0).submit(exp)  # accepted, never polled
    with TestClient(create_app(LabService(labs, world="simglucose", state_dir=state))) as c:
        result = wait_for(HttpLab(SPEC, "http://testserver", client=c, backoff_s=0), [ticket], timeout_s=5, poll_s=0)[0]
        assert result.status == "ok" and result.experiment_key == exp.key
        assert c.get(f"/v1/campaigns/{CID}/runs").json()["started"] == {exp.key: 1}  # run again once, by the new server


def test_cancel_is_idempotent_and_a_later_put_runs_it_again(client: TestClient, labs: Labs) -> None:
    put_campaign(client)
    exp = experiment()
    path = f"/v1/campaigns/{CID}/experiments/{exp.key}"
    client.put(path, json=body(exp))
    assert client.delete(path).json()["state"] == "cancelled" and client.delete(path).status_code == 200
    assert client.get(path).json()["observation"]["status"] == "cancelled"
    assert client.put(path, json=body(exp)).status_code == 201
    assert labs.runs() == {exp.key: 2}


def test_the_openapi_schema_documents_the_protocol(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["version"] == "1" and "wetloop lab protocol" in schema["info"]["title"]
    experiment_ops = schema["paths"]["/v1/campaigns/{campaign}/experiments/{key}"]
    assert set(experiment_ops) == {"put", "get", "delete"}
    assert {"Problem", "Observation", "Experiment", "CampaignSpec", "ExperimentOut"} <= set(schema["components"]["schemas"])
    assert "422" in experiment_ops["put"]["responses"] and "201" in experiment_ops["put"]["responses"]


def test_local_service_refuses_worlds_it_cannot_serve(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot serve world 'simulated'"):
        local_service("simulated", cache_dir=tmp_path)


def test_a_spec_with_an_http_lab_is_registered_as_local() -> None:
    remote = SPEC.with_overrides(lab=LabRef(adapter="http", options={"base_url": "http://x"}))
    assert campaign_id(remote) == CID and local_spec(remote).lab == LabRef()


def test_the_access_log_leaves_out_successful_polls_only() -> None:
    import logging

    from wetloop.lab_adapters._http_server import QuietPolls

    def line(method: str, path: str, status: int) -> logging.LogRecord:
        return logging.LogRecord(
            "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", method, path, "1.1", status), None
        )

    keep = QuietPolls().filter
    assert not keep(line("GET", "/v1/campaigns/c/experiments/k", 200))
    assert keep(line("PUT", "/v1/campaigns/c/experiments/k", 201))
    assert keep(line("GET", "/v1/campaigns/c/experiments/k", 404))
    assert keep(line("GET", "/v1/lab", 200))
