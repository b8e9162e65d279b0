"""`wetloop lab serve` beyond this machine: a token on every /v1/ request (made up and printed once when
none is given), the http adapter sending it, campaigns refused whose limits reach beyond the lab's own
spec, and a banner that says which limits the server enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.lab_adapters.test_http_server import Labs, body, experiment
from wetloop.agent.cli import app as cli_app
from wetloop.campaign import default_spec_path, load_spec
from wetloop.lab_adapters import LabError, wait_for
from wetloop.lab_adapters._http_protocol import campaign_id, local_spec
from wetloop.lab_adapters._http_server import create_app, is_loopback
from wetloop.lab_adapters._http_service import LabService
from wetloop.lab_adapters.http import HttpLab

SPEC = load_spec(default_spec_path())
DEFAULT_SPEC_FILE = default_spec_path()


@pytest.fixture(autouse=True)
def _no_token_in_environment(monkeypatch):
    monkeypatch.delenv("WETLOOP_LAB_TOKEN", raising=False)


def test_a_server_with_a_token_answers_only_requests_that_carry_it(tmp_path: Path) -> None:
    with TestClient(create_app(LabService(Labs(), world="simglucose"), token="s3cret")) as c:
        assert c.get("/v1/lab").status_code == 401
        wrong = c.get("/v1/lab", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        assert c.get("/v1/lab", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/openapi.json").status_code == 200  # the schema is no secret
        cid = campaign_id(SPEC)
        assert c.put(f"/v1/campaigns/{cid}", json=body(local_spec(SPEC))).status_code == 401


def test_the_http_adapter_sends_the_token_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    with TestClient(create_app(LabService(Labs(), world="simglucose"), token="s3cret")) as c:
        with pytest.raises(LabError, match="asks for a token and no token was sent: set WETLOOP_LAB_TOKEN"):
            HttpLab(SPEC, "http://testserver", client=c, backoff_s=0).submit(experiment())
        with pytest.raises(LabError, match="the token sent is not its token"):
            HttpLab(SPEC, "http://testserver", client=c, backoff_s=0, token="wrong").submit(experiment())
        monkeypatch.setenv("WETLOOP_LAB_TOKEN", "s3cret")
        lab = HttpLab(SPEC, "http://testserver", client=c, backoff_s=0)
        ticket = lab.submit(experiment())
        assert wait_for(lab, [ticket], poll_s=0.0)[0].status == "ok"


def test_a_token_in_the_spec_is_refused() -> None:
    spec = SPEC.with_overrides(lab={"adapter": "http", "options": {"base_url": "http://x", "token": "t"}})
    with pytest.raises(LabError, match="give the lab's token in WETLOOP_LAB_TOKEN"):
        HttpLab(spec, "http://x")


def test_a_campaign_reaching_beyond_the_lab_spec_is_refused() -> None:
    service = LabService(Labs(), world="simglucose", lab_spec=SPEC)
    wide = SPEC.with_overrides(
        interventions=[
            {**SPEC.interventions[0].model_dump(), "upper": 50.0, "start": None},
            SPEC.interventions[1].model_dump(),
        ]
    )
    with TestClient(create_app(service)) as c:
        refused = c.put(f"/v1/campaigns/{campaign_id(wide)}", json=body(local_spec(wide)))
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_spec"
        assert refused.json()["reasons"] == ["basal [0.05, 50] is not inside [0.05, 3]"]
        assert c.put(f"/v1/campaigns/{campaign_id(SPEC)}", json=body(local_spec(SPEC))).status_code == 201
    assert service.enforced_limits().startswith("basal 0.05 to 3 U/h; carb_ratio 3 to 50 g/U")
    assert "a client may register any limits" in LabService(Labs(), world="simglucose").enforced_limits()


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.0.2.1", "::", "lab.example.org"]))


def _serve_cli(monkeypatch, tmp_path: Path, *args: str) -> tuple[Any, str, list[Any]]:
    """`wetloop lab serve ARGS` with its socket on loopback and serving replaced by keeping the app."""
    import wetloop.lab_adapters.http_server as http_server

    served: list[Any] = []
    real_bind = http_server.bind
    monkeypatch.setattr(http_server, "bind", lambda host, port: real_bind("127.0.0.1", 0))
    monkeypatch.setattr(http_server, "serve", lambda app, sock: (served.append(app), sock.close()))
    result = CliRunner().invoke(cli_app, ["lab", "serve", "--cache-dir", str(tmp_path / "cache"), *args])
    assert result.exit_code == 0, result.output
    return result, result.output, served


def test_serving_beyond_loopback_makes_up_a_token_and_prints_it_once(monkeypatch, tmp_path: Path) -> None:
    _, out, served = _serve_cli(monkeypatch, tmp_path, "--world", "simglucose", "--host", "192.0.2.1")
    (line,) = [x for x in out.splitlines() if x.startswith("token (shown once")]
    token = line.split("WETLOOP_LAB_TOKEN=")[1].split(")")[0]
    assert len(token) >= 24 and out.count(token) == 1
    assert "limits enforced: each campaign's own hard limits" in out
    with TestClient(served[0]) as c:
        assert c.get("/v1/lab").status_code == 401
        assert c.get("/v1/lab", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_serving_on_loopback_needs_no_token_and_the_banner_names_the_lab_spec_limits(monkeypatch, tmp_path: Path) -> None:
    _, out, served = _serve_cli(monkeypatch, tmp_path, "--spec", str(DEFAULT_SPEC_FILE))
    assert "no token: 127.0.0.1 is this machine only" in out
    assert "limits enforced: basal 0.05 to 3 U/h; carb_ratio 3 to 50 g/U (the lab's own spec, and each campaign's)" in out
    with TestClient(served[0]) as c:
        assert c.get("/v1/lab").status_code == 200
