from __future__ import annotations

import json

import httpx2
import pytest

from wetloop.agent import LLMProposer, LLMSettings, ProposalContext
from wetloop.campaign import default_spec_path, load_spec

from .fakes import ScriptedLLM, completion


@pytest.fixture()
def spec():
    return load_spec(default_spec_path())


def _proposer(script: ScriptedLLM) -> LLMProposer:
    return LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted"), client=script.client())


GOOD = {
    "hypotheses": [
        {
            "statement": "More basal lowers the fasting level.",
            "candidates": [
                {"basal": 0.7, "carb_ratio": 22.0, "rationale": "raise basal"},
                {"basal": 0.8, "carb_ratio": 25.0, "rationale": "raise more"},
            ],
        },
        {
            "statement": "Tiny carb ratios are dangerous.",
            "candidates": [{"basal": 0.5, "carb_ratio": 1.0, "rationale": "out of bounds on purpose"}],
        },
    ]
}


def test_structured_reply_becomes_hypotheses(spec) -> None:
    script = ScriptedLLM([GOOD])
    reply = _proposer(script).propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=12))
    assert reply.source == "llm" and not reply.problems
    assert [len(h.candidates) for h in reply.hypotheses] == [2, 1]
    assert reply.hypotheses[0].candidates[1].values == {"basal": 0.8, "carb_ratio": 25.0}
    # out-of-bounds numbers are passed through for the graph's validation to reject and record
    assert reply.hypotheses[1].candidates[0].values["carb_ratio"] == 1.0
    request = script.requests[0]
    assert request["model"] == "scripted"
    schema = request["response_format"]["json_schema"]["schema"]
    candidate = schema["$defs"]["Candidate"]
    assert set(candidate["required"]) == {"basal", "carb_ratio", "rationale"}
    user = request["messages"][1]["content"]
    assert "adolescent#003" in user and "basal (U/h): 0.05 to 3" in user and "about 12 candidate" in user


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("this is not json", "did not match the schema"),
        ('{"hypotheses": [{"statement": "x", "candidates": [{"basal": "lots"}]}]}', "did not match the schema"),
    ],
)
def test_malformed_reply_is_a_problem_not_a_crash(spec, bad, problem) -> None:
    reply = _proposer(ScriptedLLM([bad])).propose(ProposalContext(spec=spec, round=1, history=[]))
    assert reply.n_candidates == 0 and problem in reply.problems[0]


def test_refusal_and_server_error(spec) -> None:
    refused = ScriptedLLM([lambda body: httpx2.Response(200, json=completion(None, refusal="I cannot help"))])
    reply = _proposer(refused).propose(ProposalContext(spec=spec, round=1, history=[]))
    assert reply.problems == ["the LLM refused: I cannot help"]
    broken = ScriptedLLM([lambda body: httpx2.Response(500, json={"error": {"message": "boom"}})])
    reply = _proposer(broken).propose(ProposalContext(spec=spec, round=1, history=[]))
    assert "the LLM endpoint failed: InternalServerError" in reply.problems[0]


def test_settings_decide_offline(monkeypatch) -> None:
    monkeypatch.delenv("WETLOOP_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("WETLOOP_LLM_API_KEY", raising=False)
    assert not LLMSettings().configured
    monkeypatch.setenv("WETLOOP_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    assert LLMSettings().configured and LLMSettings(model="m").base_url == "http://127.0.0.1:8000/v1"


def test_categorical_variables_are_asked_for_as_names() -> None:
    from wetloop.campaign import CampaignSpec, Intervention, Observation

    screen = CampaignSpec(
        name="s",
        question="Which knockouts raise IFNG?",
        world="crispr_screen",
        objective={"readout": "hit"},
        interventions=[{"name": "gene", "kind": "categorical"}],
        budget={"rounds": 2, "batch": 4},
    )
    reply = {
        "hypotheses": [
            {
                "statement": "JAK-STAT signalling regulates IFNG.",
                "candidates": [
                    {"gene": "STAT1", "rationale": "core of the pathway"},
                    {"gene": "JAK1", "rationale": "upstream kinase"},
                ],
            }
        ]
    }
    script = ScriptedLLM([reply])
    history = [(Intervention(values={"gene": "IRF1"}), Observation(experiment_key="k", status="ok", readouts={"hit": 1.0}))]
    out = _proposer(script).propose(ProposalContext(spec=screen, round=2, history=history))
    assert [c.values for c in out.hypotheses[0].candidates] == [{"gene": "STAT1"}, {"gene": "JAK1"}]
    schema = script.requests[0]["response_format"]["json_schema"]["schema"]["$defs"]["Candidate"]
    assert schema["properties"]["gene"]["type"] == "string"
    user = script.requests[0]["messages"][1]["content"]
    assert "- gene: a name" in user and "| IRF1 | ok |" in user


def test_the_reply_is_streamed_and_its_progress_heard(spec) -> None:
    """A slow local model writes for minutes: the reply streams in pieces, the timeout bounds each wait,
    and a person hears how far it has come."""
    script = ScriptedLLM([GOOD])
    heard: list[tuple[int, float]] = []
    proposer = LLMProposer(
        LLMSettings(base_url="http://llm.test/v1", model="scripted"),
        client=script.client(),
        on_progress=lambda chars, seconds: heard.append((chars, seconds)),
        progress_every_s=0.0,
    )
    reply = proposer.propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=12))
    assert script.requests[0]["stream"] is True and not reply.problems and reply.n_candidates == 3
    total = len(json.dumps(GOOD))
    assert len(heard) > 5 and heard[-1][0] == total  # one call per 16-character piece, up to the whole reply
    assert [c for c, _ in heard] == sorted(c for c, _ in heard)
