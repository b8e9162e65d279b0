"""A hostile OpenAI-compatible endpoint (in-process, `ScriptedLLM`): 10,000 candidates, a 5 MB reply, a
statement megabytes long, proposals only outside the start region. Nothing it sends makes the campaign
run empty rounds, keep megabytes, or echo them into the next prompt; what was cut is recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from wetloop.agent import Campaign, LLMProposer, LLMSettings, ProposalContext
from wetloop.agent import cli as cli_module
from wetloop.agent.llm import RAW_KEPT, STATEMENT_CHARS, user_prompt
from wetloop.campaign import Hypothesis, Ranking, SafetyRemoval

from .conftest import FAST_WORLD
from .fakes import ScriptedLLM

URL = "http://llm.test/v1"


def _reply(statement: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"hypotheses": [{"statement": statement, "candidates": candidates}]}


def _proposer(script: ScriptedLLM, **settings: Any) -> LLMProposer:
    return LLMProposer(LLMSettings(base_url=URL, model="scripted", **settings), client=script.client())


TEN_THOUSAND = _reply("Any basal works.", [{"basal": 0.3, "carb_ratio": 20 + i / 1000, "rationale": "x"} for i in range(10_000)])


def test_ten_thousand_candidates_are_cut_unread_past_the_reply_cap(spec) -> None:
    script = ScriptedLLM([TEN_THOUSAND])
    out = _proposer(script).propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=48))
    assert out.n_candidates == 0
    assert "ran past 64,000 characters" in out.problems[0] and "WETLOOP_LLM_MAX_REPLY_CHARS" in out.problems[0]
    assert out.raw is not None and len(out.raw) < RAW_KEPT + 100


def test_ten_thousand_candidates_under_a_larger_cap_are_cut_to_the_menu_with_the_excess_recorded(spec) -> None:
    out = _proposer(ScriptedLLM([TEN_THOUSAND], piece=4096), max_reply_chars=2_000_000).propose(
        ProposalContext(spec=spec, round=1, history=[], n_candidates=48)
    )
    assert out.n_candidates == 48
    assert out.problems == ["the LLM listed up to 10000 candidates under one hypothesis, more than 48; 9952 were dropped"]


def test_a_5_mb_reply_is_cut_off_and_only_its_head_is_kept(spec) -> None:
    huge = _reply("y" * 5_000_000, [{"basal": 0.3, "carb_ratio": 25.0, "rationale": "x"}])
    out = _proposer(ScriptedLLM([huge])).propose(ProposalContext(spec=spec, round=1, history=[]))
    assert out.n_candidates == 0 and "ran past 64,000 characters" in out.problems[0]
    assert out.raw is not None and len(out.raw) < RAW_KEPT + 100


def test_a_long_statement_is_stored_cut_and_never_echoed_in_full(small_campaign) -> None:
    long = "Basal matters. " + "z" * 150_000
    first = _reply(long, [{"basal": 0.3 + 0.05 * i, "carb_ratio": 25.0 + i, "rationale": "r" * 5_000} for i in range(3)])
    later = _reply("Less basal.", [{"basal": 0.26, "carb_ratio": 40.0, "rationale": "in the start region"}])
    script = ScriptedLLM([first, later], piece=4096)
    # within the reply cap: the text caps apply
    with small_campaign(2, 2, proposer=_proposer(script, max_reply_chars=400_000)) as c:
        assert c.run().done
        (stored,) = [h for h in c.store.hypotheses(c.campaign_id).values() if h.statement.startswith("Basal matters.")]
        assert len(stored.statement) == STATEMENT_CHARS
        assert all(len(p.rationale) <= 300 for p in c.store.proposals(c.campaign_id))
        cut = [r.payload["reason"] for r in c.store.records(c.campaign_id, "invalid_proposal", round=1)]
        assert cut == [
            "1 hypothesis statements longer than 500 characters and 3 rationales longer than 300 were cut to that length"
        ]
    prompt = script.requests[1]["messages"][1]["content"]
    assert "z" * 1000 not in prompt and len(prompt) < 20_000


def test_a_statement_stored_before_the_cap_is_cut_in_the_prompt(spec) -> None:
    huge = Hypothesis(id="H1-abc", statement="w" * 5_000_000, source="llm", round=1)
    many = [Hypothesis(id=f"H1-{i}", statement=f"hypothesis {i}", source="llm", round=1) for i in range(100)]
    prompt = user_prompt(ProposalContext(spec=spec, round=2, history=[], hypotheses=[huge, *many]))
    assert len(prompt) < 20_000 and "The 24 most recent of 101 hypotheses" in prompt
    prompt = user_prompt(ProposalContext(spec=spec, round=2, history=[], hypotheses=[huge]))
    assert "w" * STATEMENT_CHARS not in prompt and "w" * (STATEMENT_CHARS - 1) + "…" in prompt


OUTSIDE_START = _reply(
    "High basal is best.",
    [{"basal": 1.0 + 0.1 * i, "carb_ratio": 10.0 + i, "rationale": "outside the start region"} for i in range(8)],
)


def test_proposals_only_outside_the_start_region_fall_back_to_the_offline_proposer(small_campaign) -> None:
    """Such an endpoint once stalled the campaign: 0 experiments, exit 0."""
    with small_campaign(1, 3, proposer=_proposer(ScriptedLLM([OUTSIDE_START]))) as c:
        outcome = c.run()
        assert outcome.done and outcome.stalled is None
        exps = c.store.experiments(c.campaign_id)
        assert len(exps) == 3
        ranked = {p.intervention.key(): p.source for p in c.store.proposals(c.campaign_id, round=1)}
        assert all(ranked[e.intervention.key()] == "offline" for e in exps)
        (fallback,) = [r.payload for r in c.store.records(c.campaign_id, "event") if r.payload.get("type") == "fallback"]
        assert "8 removed (start region)" in fallback["reason"] and fallback["added"] > 0


class _RemovesEverything:
    """A planner whose safety filter removes every candidate (as a world model predicting all unsafe would)."""

    name = "removes-everything"

    def rank(self, proposals, world, history, round):  # noqa: ANN001, A002
        removed = tuple(SafetyRemoval(proposal=p, p_unsafe=0.9, limit="severe hypoglycaemia", reason="unsafe") for p in proposals)
        return Ranking(round=round, ranked=(), removed=removed)


class _Stuck(Campaign):
    def _make_planner(self) -> Any:
        return _RemovesEverything()


@pytest.mark.parametrize("llm", [True, False], ids=["llm-then-offline", "offline"])
def test_a_round_that_can_run_nothing_stops_the_campaign_recorded(spec, tmp_path, fake_labs, quiet, llm) -> None:
    proposer = _proposer(ScriptedLLM([OUTSIDE_START])) if llm else None
    with _Stuck.create(
        spec.with_overrides(budget={"rounds": 3, "batch": 2}),
        tmp_path / "run",
        lab_factory=fake_labs,
        world_config=FAST_WORLD,
        console=quiet,
        proposer=proposer,
    ) as c:
        outcome = c.run()
        assert outcome.done and outcome.round == 1 and c.store.count(c.campaign_id, "experiment") == 0
        assert outcome.stalled is not None and "round 1 could run no experiment" in outcome.stalled
        assert "removed (severe hypoglycaemia)" in outcome.stalled
        assert outcome.stopped is not None and outcome.stopped.reason == outcome.stalled
        fallbacks = [r for r in c.store.records(c.campaign_id, "event") if r.payload.get("type") == "fallback"]
        assert len(fallbacks) == (1 if llm else 0)


def test_the_cli_exits_non_zero_when_a_round_can_run_nothing(spec, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("wetloop.agent.runner.Campaign._make_planner", lambda self: _RemovesEverything())
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps(spec.with_overrides(budget={"rounds": 2, "batch": 2}).model_dump(mode="json")))
    result = CliRunner().invoke(cli_module.app, ["run", str(spec_file), "--dir", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert "the campaign stopped: round 1 could run no experiment" in " ".join(result.output.split())
