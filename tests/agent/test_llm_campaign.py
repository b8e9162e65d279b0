"""What a person sees of the LLM in a campaign: what it waits for and how long the reply took, the raw
reply kept when it could not be used, and how many rounds the offline proposer stood in."""

from __future__ import annotations

import httpx2
from rich.console import Console

from wetloop.agent import Campaign, LLMProposer, LLMSettings
from wetloop.agent.cli import proposer_line

from .conftest import FAST_WORLD
from .fakes import ScriptedLLM, completion

GOOD = {
    "hypotheses": [
        {
            "statement": "Moderate basal with a mid carb ratio keeps the day in range.",
            "candidates": [
                {"basal": 0.3, "carb_ratio": 30.0, "rationale": "in bounds"},
                {"basal": 0.4, "carb_ratio": 25.0, "rationale": "in bounds"},
                {"basal": 0.5, "carb_ratio": 35.0, "rationale": "in bounds"},
            ],
        }
    ]
}
PARTIAL = '{"hypotheses": [{"statement": "More basal", "candidates": [{"basal": 0.4, "carb_ratio": 2'


def _cut_off(body: dict) -> httpx2.Response:
    """A reply stopped by max_tokens half-way through its JSON, as a small local model's is."""
    reply = completion(PARTIAL)
    reply["choices"][0]["finish_reason"] = "length"
    return httpx2.Response(200, json=reply)


def test_a_cut_off_reply_is_kept_said_and_counted(small_campaign) -> None:
    client = ScriptedLLM([_cut_off, GOOD]).client()
    settings = LLMSettings(base_url="http://llm.test/v1", model="scripted", timeout_s=30, max_retries=1)
    console = Console(stderr=True, record=True, width=200)
    campaign = small_campaign(2, 3, console=console, proposer=LLMProposer(settings, client=client))
    with campaign as c:
        assert c.run().done
        log = console.export_text()
        assert (
            "asking the LLM scripted at http://llm.test/v1 (streamed, at most 4000 tokens; up to 30 s for each piece, 2 attempts)"
            in log
        )
        assert "llm proposer gave no valid candidates in" in log and "cut off at max_tokens" in log
        assert "the reply is kept in the store" in log
        kept = [r.payload for r in c.store.records(c.campaign_id, "invalid_proposal") if r.round == 1]
        assert kept[0]["raw"] == PARTIAL and "cut off at max_tokens" in kept[0]["reason"]
        line = proposer_line(c.store, c.campaign_id)
    assert line is not None and line.startswith("proposer: llm in 1 of 2 rounds; the offline proposer stood in for 1 (round 1:")
    assert "cut off at max_tokens" in line


def test_an_offline_campaign_has_no_proposer_line(small_campaign) -> None:
    with small_campaign(1, 2) as c:
        assert c.run().done
        assert proposer_line(c.store, c.campaign_id) is None


def test_too_few_valid_llm_candidates_are_topped_up_so_the_batch_is_full(small_campaign) -> None:
    """A small model once gave one usable candidate for a batch of two: the round ran one experiment."""
    one_good = {
        "hypotheses": [
            {
                "statement": "A little more basal is enough.",
                "candidates": [
                    {"basal": 0.35, "carb_ratio": 28.0, "rationale": "in bounds"},
                    {"basal": 9.0, "carb_ratio": 20.0, "rationale": "out of bounds"},
                ],
            }
        ]
    }
    proposer = LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted"), client=ScriptedLLM([one_good]).client())
    with small_campaign(1, 3, proposer=proposer) as c:
        assert c.run().done
        assert len(c.store.experiments(c.campaign_id)) == 3
        sources = {p.source for p in c.store.proposals(c.campaign_id, round=1)}
        assert sources == {"llm", "offline"}
        assert {"basal": 0.35, "carb_ratio": 28.0} in [p.intervention.values for p in c.store.proposals(c.campaign_id, round=1)]
        line = proposer_line(c.store, c.campaign_id)
    assert line == (
        "proposer: llm in 1 of 1 rounds (the offline proposer added candidates in 1, where too few were valid to fill the batch)"
    )
