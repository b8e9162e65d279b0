"""HttpLab against a scripted fake lab through httpx.MockTransport: request building, parsing, retries,
and the three failure layers (transport: retried; protocol: raised; result: quarantined). No network."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    LabRef,
    Observation,
    Trajectory,
    default_spec_path,
    load_spec,
)
from wetloop.lab_adapters import (
    ExperimentRejected,
    LabError,
    LabProtocolError,
    LabUnreachable,
    MalformedResult,
    UnknownTicket,
    make_lab,
)
from wetloop.lab_adapters._http_protocol import campaign_id, local_spec
from wetloop.lab_adapters.errors import WorldMismatch
from wetloop.lab_adapters.http import HttpLab
from wetloop.worlds.simglucose import glucose_readouts

SPEC = load_spec(default_spec_path())
BASE = "http://lab.test"

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def experiment(basal: float = 0.6) -> Experiment:
    x = Intervention(values={"basal": basal, "carb_ratio": 20.0})
    return Experiment(campaign_id="c1", round=1, intervention=x, approved_by="test")


def observation_of(key: str, basal: float) -> dict[str, Any]:
    glucose = tuple(float(v) for v in 200.0 - 150.0 * basal + 10.0 * np.sin(np.arange(6)))
    trajectory = Trajectory(times_min=tuple(3.0 * i for i in range(6)), series={"glucose": glucose}, units={"glucose": "mg/dL"})
    obs = Observation(
        experiment_key=key, status="ok", trajectory=trajectory, readouts=glucose_readouts(np.asarray(glucose), SPEC), lab="fake"
    )
    return obs.model_dump(mode="json")


class FakeLab:
    """The protocol's server side in a few lines. `script` holds replies (or errors) served before the
    normal handling of the next requests, in order; `requests` keeps everything that arrived."""

    def __init__(self, polls_until_done: int = 0, version: int = 1) -> None:
        self.polls_until_done, self.version = polls_until_done, version
        self.script: list[Step | None] = []
        self.requests: list[httpx.Request] = []
        self.experiments: dict[str, Experiment] = {}
        self.polls: dict[str, int] = {}
        self.campaigns: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request) if step is not None else self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if parts == ["v1", "lab"]:
            return httpx.Response(
                200, json={"protocol": "wetloop-lab", "version": self.version, "lab": "fake", "world": "simglucose"}
            )
        if len(parts) == 3:
            self.campaigns[parts[2]] = json.loads(request.content)
            return httpx.Response(201, json={"campaign": parts[2], "world": "simglucose", "created": True})
        key = parts[4]
        if request.method == "PUT":
            self.experiments[key] = Experiment.model_validate_json(request.content)
            return httpx.Response(201, json={"campaign": parts[2], "experiment_key": key, "state": "accepted", "created": True})
        if key not in self.experiments:
            return httpx.Response(404, json={"error": "unknown_experiment", "message": f"no experiment {key}"})
        if request.method == "DELETE":
            return httpx.Response(200, json={"campaign": parts[2], "experiment_key": key, "state": "cancelled"})
        return httpx.Response(200, json=self.status(key))

    def status(self, key: str) -> dict[str, Any]:
        self.polls[key] = self.polls.get(key, 0) + 1
        if self.polls[key] <= self.polls_until_done:
            return {"experiment_key": key, "state": "running", "observation": None}
        return {
            "experiment_key": key,
            "state": "done",
            "observation": observation_of(key, self.experiments[key].intervention.values["basal"]),
        }

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]


def lab_for(fake: FakeLab, **kwargs: Any) -> HttpLab:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return HttpLab(SPEC, BASE, client=client, backoff_s=0.0, **{"retries": 3, **kwargs})


def test_submit_registers_the_campaign_once_and_puts_the_experiment_at_its_key() -> None:
    fake = FakeLab(polls_until_done=1)
    lab = lab_for(fake)
    exp, other = experiment(), experiment(0.8)
    ticket = lab.submit(exp)
    assert lab.submit(exp) == ticket  # the same key: no second request
    lab.submit(other)
    cid = campaign_id(SPEC)
    assert fake.paths() == [
        "/v1/lab",
        f"/v1/campaigns/{cid}",
        f"/v1/campaigns/{cid}/experiments/{exp.key}",
        f"/v1/campaigns/{cid}/experiments/{other.key}",
    ]
    assert CampaignSpec.model_validate(fake.campaigns[cid]) == local_spec(SPEC)  # sent without its lab
    assert fake.experiments[exp.key] == exp
    assert ticket.lab == "http" and ticket.lab_ref == f"v1/campaigns/{cid}/experiments/{exp.key}"
    assert lab.poll(ticket) is None
    obs = lab.poll(ticket)
    assert obs is not None and obs.status == "ok" and obs.experiment_key == exp.key
    assert obs == Observation.model_validate(observation_of(exp.key, 0.6))


def test_out_of_bounds_never_reaches_the_lab() -> None:
    fake = FakeLab()
    with pytest.raises(ExperimentRejected):
        lab_for(fake).submit(experiment(basal=50.0))
    assert fake.requests == []


def test_the_lab_s_own_rejection_becomes_experiment_rejected() -> None:
    fake = FakeLab()
    fake.script = [
        None,
        None,
        httpx.Response(422, json={"error": "rejected", "message": "no", "reasons": ["lab limit: basal too high"]}),
    ]
    with pytest.raises(ExperimentRejected) as info:
        lab_for(fake).submit(experiment())
    assert info.value.reasons == ("lab limit: basal too high",)


@pytest.mark.parametrize(
    "fault",
    [
        httpx.Response(503, text="busy"),
        httpx.Response(502),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.Response(200, content=b'{"experiment_key": "abc", "state": "do'),  # cut short: not JSON
    ],
    ids=["503", "502", "refused", "timeout", "dropped", "truncated"],
)
def test_transient_failures_are_retried_and_the_result_is_used(fault: Step) -> None:
    fake = FakeLab()
    lab = lab_for(fake)
    ticket = lab.submit(experiment())
    fake.script = [fault, fault]
    obs = lab.poll(ticket)
    assert obs is not None and obs.status == "ok"
    assert len(fake.paths("GET")) == 1 + 3  # the version check, two failures, then the good reply


def test_retries_run_out_as_lab_unreachable() -> None:
    fake = FakeLab()
    lab = lab_for(fake, retries=2)
    fake.script = [httpx.ConnectError("refused")] * 10
    with pytest.raises(LabUnreachable) as info:
        lab.submit(experiment())
    assert info.value.attempts == 3 and len(fake.requests) == 3
    assert "refused" in str(info.value) and "then resume the campaign" in str(info.value)


def _null_glucose(obs: dict) -> None:
    obs["trajectory"]["series"]["glucose"][2] = None


def _short_series(obs: dict) -> None:
    obs["trajectory"]["series"]["glucose"].pop()


def _negative(obs: dict) -> None:
    obs["trajectory"]["series"]["glucose"][1] = -80.0


def _other_key(obs: dict) -> None:
    obs["experiment_key"] = "someone-else"


def _no_objective(obs: dict) -> None:
    obs["readouts"].pop("time_in_range")


@pytest.mark.parametrize(
    "corrupt, words",
    [
        (_null_glucose, "glucose"),
        (_short_series, "points"),
        (_negative, "negative"),
        (_other_key, "someone-else"),
        (_no_objective, "time_in_range"),
    ],
)
def test_a_well_formed_but_invalid_result_is_malformed_with_its_raw_reply(corrupt: Callable[[dict], None], words: str) -> None:
    fake = FakeLab()
    lab = lab_for(fake)
    exp = experiment()
    ticket = lab.submit(exp)
    body = fake.status(exp.key)
    corrupt(body["observation"])
    fake.script = [httpx.Response(200, json=body)]
    with pytest.raises(MalformedResult) as info:
        lab.poll(ticket)
    assert info.value.experiment_key == exp.key and info.value.raw == body
    assert words in info.value.problem
    assert len(fake.paths("GET")) == 2  # a malformed result is not retried


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={"experiment_key": "x", "result": {}}),  # no state: not this protocol
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(418, json={"error": "teapot"}),
    ],
    ids=["no-state", "a-list", "unexpected-status"],
)
def test_replies_outside_the_protocol_raise_protocol_error(reply: httpx.Response) -> None:
    fake = FakeLab()
    lab = lab_for(fake)
    ticket = lab.submit(experiment())
    fake.script = [reply]
    with pytest.raises(LabProtocolError):
        lab.poll(ticket)


def test_another_protocol_version_is_refused_before_anything_is_submitted() -> None:
    fake = FakeLab(version=2)
    with pytest.raises(LabProtocolError, match="protocol version 2"):
        lab_for(fake).submit(experiment())
    assert fake.paths() == ["/v1/lab"]


def test_a_refused_campaign_says_why() -> None:
    fake = FakeLab()
    fake.script = [None, httpx.Response(422, json={"error": "wrong_world", "message": "this lab runs world 'crispr'"})]
    with pytest.raises(WorldMismatch, match="runs world 'crispr'"):
        lab_for(fake).submit(experiment())
    fake.script = [None, httpx.Response(409, json={"error": "campaign_conflict", "message": "registered with a different spec"})]
    with pytest.raises(LabError, match="different spec"):
        lab_for(fake).submit(experiment())


def test_a_lab_that_lost_the_campaign_gets_it_again() -> None:
    fake = FakeLab()
    lab = lab_for(fake)
    lab.submit(experiment())
    fake.script = [httpx.Response(404, json={"error": "unknown_campaign", "message": "PUT the campaign first"})]
    lab.submit(experiment(0.7))
    cid = campaign_id(SPEC)
    assert fake.paths("PUT").count(f"/v1/campaigns/{cid}") == 2 and len(fake.experiments) == 2


def test_cancel_then_a_ticket_the_lab_forgot() -> None:
    fake = FakeLab(polls_until_done=5)
    lab = lab_for(fake)
    first, second = lab.submit(experiment()), lab.submit(experiment(0.7))
    lab.cancel(first)
    assert fake.paths("DELETE") == ["/" + first.lab_ref]
    cancelled = lab.poll(first)
    assert cancelled is not None and cancelled.status == "cancelled"
    fake.experiments.clear()  # e.g. a server started on an empty cache
    with pytest.raises(UnknownTicket, match="no experiment"):
        lab.poll(second)


def test_make_lab_builds_it_from_the_spec_and_ignores_local_options() -> None:
    spec = SPEC.with_overrides(lab=LabRef(adapter="http", options={"base_url": BASE + "/", "timeout_s": 2.5}))
    with make_lab(spec, cache_dir="/nonexistent", workers=3) as lab:
        assert isinstance(lab, HttpLab) and lab.base_url == BASE and lab.timeout_s == 2.5
