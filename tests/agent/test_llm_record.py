"""The LLM endpoint (base_url and model, never the key) is part of a campaign's record, and a reopened
campaign (`resume`, `review`) proposes with it, or says loudly why it cannot; it never switches to
the offline proposer unsaid."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from rich.console import Console

from wetloop.agent import Campaign, LLMProposer, LLMSettings
from wetloop.agent.errors import RunDirError
from wetloop.agent.offline import OfflineProposer

URL = "http://llm.test/v1"


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch):
    for name in ("WETLOOP_LLM_BASE_URL", "WETLOOP_LLM_API_KEY", "WETLOOP_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)


def _create(spec, tmp_path, fake_labs, quiet, **llm) -> Campaign:
    return Campaign.create(spec, tmp_path / "run", lab_factory=fake_labs, console=quiet, llm=LLMSettings(**llm) if llm else None)


def test_the_endpoint_is_recorded_without_its_key(spec, tmp_path, fake_labs, quiet) -> None:
    with _create(spec, tmp_path, fake_labs, quiet, base_url=URL, model="small", api_key=SecretStr("sk-very-secret")) as c:
        run_record = c.store.records(c.campaign_id, "event", key="run")[0].payload
    meta = json.loads((tmp_path / "run" / "campaign.json").read_text())
    assert meta["proposer"] == {"kind": "llm", "base_url": URL, "model": "small", "api_key": True} == run_record["proposer"]
    assert b"sk-very-secret" not in (tmp_path / "run" / "store.sqlite").read_bytes()
    assert "sk-very-secret" not in (tmp_path / "run" / "campaign.json").read_text()


def test_a_reopened_campaign_proposes_with_its_recorded_endpoint(spec, tmp_path, fake_labs, quiet, monkeypatch) -> None:
    _create(spec, tmp_path, fake_labs, quiet, base_url=URL, model="small").close()
    monkeypatch.setenv("WETLOOP_LLM_TEMPERATURE", "0.5")  # the environment still gives the other settings
    with Campaign(tmp_path / "run", lab_factory=fake_labs, console=quiet) as c:
        proposer = c._context().proposer
    assert isinstance(proposer, LLMProposer)
    assert (proposer.settings.base_url, proposer.settings.model, proposer.settings.temperature) == (URL, "small", 0.5)


def test_a_reopened_campaign_whose_endpoint_needs_a_key_says_so(spec, tmp_path, fake_labs, quiet, monkeypatch) -> None:
    _create(spec, tmp_path, fake_labs, quiet, base_url=URL, model="small", api_key=SecretStr("sk-x")).close()
    with Campaign(tmp_path / "run", lab_factory=fake_labs, console=quiet) as c:
        assert c.outcome().round == 0  # reading it needs no key
        with pytest.raises(RunDirError, match="needs an API key: set WETLOOP_LLM_API_KEY"):
            c.run()
    monkeypatch.setenv("WETLOOP_LLM_API_KEY", "sk-y")
    with Campaign(tmp_path / "run", lab_factory=fake_labs, console=quiet) as c:
        proposer = c._context().proposer
    assert isinstance(proposer, LLMProposer) and proposer.settings.api_key is not None


def test_the_environment_does_not_switch_a_campaign_s_proposer_unsaid(spec, tmp_path, fake_labs, monkeypatch) -> None:
    _create(spec, tmp_path, fake_labs, Console(quiet=True)).close()  # an offline campaign
    _create(spec, tmp_path / "b", fake_labs, Console(quiet=True), base_url=URL, model="small").close()
    monkeypatch.setenv("WETLOOP_LLM_BASE_URL", "http://other.test/v1")
    console = Console(record=True, width=300)
    with Campaign(tmp_path / "run", lab_factory=fake_labs, console=console) as c:
        assert isinstance(c._context().proposer, OfflineProposer)
    with Campaign(tmp_path / "b" / "run", lab_factory=fake_labs, console=console) as c:
        proposer = c._context().proposer
    assert isinstance(proposer, LLMProposer) and proposer.settings.base_url == URL
    log = console.export_text()
    assert (
        "runs with the offline proposer, as it began; the LLM endpoint in the environment (http://other.test/v1) is not used"
        in log
    )
    assert f"proposes with LLM small at {URL} (recorded when it began)" in log
