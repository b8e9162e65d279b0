"""The LLM proposer's schema and reply for every kind of variable, on a scripted endpoint."""

from __future__ import annotations

import httpx2
import pytest

from wetloop.agent import LLMProposer, LLMSettings, ProposalContext
from wetloop.campaign import CampaignSpec, Intervention, Observation

from .fakes import ScriptedLLM, completion, five_kinds_spec


@pytest.fixture()
def spec() -> CampaignSpec:
    return five_kinds_spec(
        question="Which cocktail makes erythrocytes?",
        objective={"readout": "ery"},
        budget={"rounds": 3, "batch": 2},
        safety=[{"name": "toxicity", "readout": "dead", "above": 0.3, "max_probability": 0.1}],
    )


def _proposer(script: ScriptedLLM, **limits) -> LLMProposer:
    return LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted", **limits), client=script.client())


def _candidate(**values) -> dict:
    base = {"dose": 0.5, "n_doses": 2, "medium": "rich", "gene": "STAT1", "cocktail": [], "rationale": "why not"}
    return {**base, **values}


def test_the_schema_covers_every_kind(spec) -> None:
    script = ScriptedLLM([{"hypotheses": []}])
    _proposer(script, max_tokens=1234, max_hypotheses=3).propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=10))
    request = script.requests[0]
    assert request["max_tokens"] == 1234 and request["response_format"]["json_schema"]["strict"] is True
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["hypotheses"]["maxItems"] == 3
    assert schema["$defs"]["HypothesisWithCandidates"]["properties"]["candidates"]["maxItems"] == 10
    props = schema["$defs"]["Candidate"]["properties"]
    assert (props["dose"]["type"], props["dose"]["minimum"], props["dose"]["maximum"]) == ("number", 0.01, 10.0)
    assert (props["n_doses"]["type"], props["n_doses"]["minimum"], props["n_doses"]["maximum"]) == ("integer", 1, 6)
    assert props["medium"]["enum"] == ["rich", "poor"] and "enum" not in props["gene"] and props["gene"]["type"] == "string"
    cocktail = props["cocktail"]
    assert (cocktail["type"], cocktail["minItems"], cocktail["maxItems"]) == ("array", 0, 2)
    entry = schema["$defs"][cocktail["items"]["$ref"].rsplit("/", 1)[-1]]
    assert entry["properties"]["item"]["enum"] == ["Gata1", "Pu1", "Fli1"] and entry["properties"]["level"]["enum"] == [
        "ko",
        "oe",
    ]
    for obj in schema["$defs"].values():  # OpenAI strict mode: closed objects, every property required
        assert obj["additionalProperties"] is False and set(obj["required"]) == set(obj["properties"])


def test_a_reply_of_every_kind_becomes_values(spec) -> None:
    reply = {
        "hypotheses": [
            {
                "statement": "Gata1 with Fli1 knocked out favours erythrocytes.",
                "candidates": [
                    _candidate(cocktail=[{"item": "Gata1", "level": "oe"}, {"item": "Fli1", "level": "ko"}]),
                    _candidate(
                        n_doses=2.5, medium="soup", gene="IRF1"
                    ),  # out of bounds: passed through, for validation to refuse
                ],
            }
        ]
    }
    out = _proposer(ScriptedLLM([reply])).propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=4))
    assert not out.problems
    first, second = (c.values for c in out.hypotheses[0].candidates)
    assert first == {"dose": 0.5, "n_doses": 2.0, "medium": "rich", "gene": "STAT1", "cocktail": {"Gata1": "oe", "Fli1": "ko"}}
    assert not Intervention(values=first).violations(spec)
    problems = " ".join(Intervention(values=second).violations(spec))
    assert "n_doses = 2.5 must be a whole number" in problems and "'soup' is not one of the allowed choices" in problems


def test_long_lists_are_cut_to_the_bounds(spec) -> None:
    many = {
        "hypotheses": [{"statement": f"h{i}", "candidates": [_candidate(dose=0.1 * (j + 1)) for j in range(9)]} for i in range(6)]
    }
    out = _proposer(ScriptedLLM([many]), max_hypotheses=4).propose(
        ProposalContext(spec=spec, round=1, history=[], n_candidates=5)
    )
    assert [len(h.candidates) for h in out.hypotheses] == [5, 5, 5, 5]
    assert out.problems == [
        "the LLM stated 6 hypotheses, more than 4; 2 were dropped",
        "the LLM listed up to 9 candidates under one hypothesis, more than 5; 16 were dropped",
    ]


def test_a_reply_cut_off_at_max_tokens_says_so(spec) -> None:
    def cut(body):
        data = completion('{"hypotheses": [{"statement": "x", "candi')
        data["choices"][0]["finish_reason"] = "length"
        return httpx2.Response(200, json=data)

    out = _proposer(ScriptedLLM([cut]), max_tokens=300).propose(ProposalContext(spec=spec, round=1, history=[]))
    assert (
        out.n_candidates == 0 and "cut off at max_tokens=300" in out.problems[0] and "WETLOOP_LLM_MAX_TOKENS" in out.problems[0]
    )


def test_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_LLM_MAX_TOKENS", "2000")
    monkeypatch.setenv("WETLOOP_LLM_MAX_HYPOTHESES", "2")
    # one settings class per prefix: the endpoint's settings accept the limits' variables (they once refused them)
    settings = LLMSettings(base_url="http://llm.test/v1")
    assert (settings.max_tokens, settings.max_hypotheses) == (2000, 2)
    assert LLMSettings(max_tokens=900).max_tokens == 900  # explicit arguments win


def test_the_prompt_describes_every_kind(spec) -> None:
    script = ScriptedLLM([{"hypotheses": []}])
    x = Intervention(
        values={"dose": 0.5, "n_doses": 3.0, "medium": "poor", "gene": "IRF1", "cocktail": {"Pu1": "ko", "Gata1": "oe"}}
    )
    history = [(x, Observation(experiment_key="k", status="ok", readouts={"ery": 0.4, "dead": 0.1, "mye": 0.2}))]
    _proposer(script).propose(ProposalContext(spec=spec, round=2, history=history))
    user = script.requests[0]["messages"][1]["content"]
    assert "- dose (uM): 0.01 to 10" in user and "- n_doses: whole number 1 to 6" in user
    assert "- medium: a name (rich, poor)" in user and "- gene: a name" in user
    assert "- cocktail: a list of 0 to 2 items from Gata1, Pu1, Fli1, each once with a level (ko, oe)" in user
    assert "- toxicity: P(dead > 0.3) must stay under 0.1" in user
    assert "| 0.5 | 3 | poor | IRF1 | Gata1 oe + Pu1 ko | ok | 0.4 |" in user and "mye" in user
