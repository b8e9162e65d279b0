"""The loop end to end on the in-process fake lab: stores, safety, review gate, LLM validation."""

from __future__ import annotations

import pytest

from wetloop.agent import AgentSettings, Campaign, LLMProposer, LLMSettings, RunDirError
from wetloop.campaign import Decision, Intervention
from wetloop.lab_adapters import MalformedResult, SimulatedLab

from .conftest import FAST_WORLD
from .fakes import ScriptedLLM, toy_glucose_day


def _open(spec, tmp_path, fake_labs, quiet, **kw):
    return Campaign.create(spec, tmp_path / "run", lab_factory=fake_labs, world_config=FAST_WORLD, console=quiet, **kw)


def test_autonomous_campaign_runs_every_node_and_stores_everything_once(spec, tmp_path, fake_labs, quiet) -> None:
    with _open(spec, tmp_path, fake_labs, quiet) as c:
        outcome = c.run()
        store, cid = c.store, c.campaign_id
        assert outcome.done and outcome.round == 3
        exps = store.experiments(cid)
        assert len(exps) == 9 and len({e.key for e in exps}) == 9
        assert set(store.submissions(cid)) == set(store.observations(cid)) == {e.key for e in exps}
        assert all(n == 1 for n in fake_labs.made[0].runs.values()) and len(fake_labs.made[0].runs) == 9
        # round 1 has no model: drawn from the conservative start region only
        for e in store.experiments(cid, round=1):
            for v in spec.interventions:
                lo, hi = v.start_bounds
                assert lo <= e.intervention.values[v.name] <= hi
        rankings = store.rankings(cid)
        assert [r.round for r in rankings] == [1, 2, 3]
        assert rankings[0].ranked[0].score.p_unsafe is None
        later = rankings[-1].selected[0].score
        assert later.p_unsafe is not None and later.p_unsafe <= spec.safety[0].max_probability
        assert later.expected_value is not None and later.info_gain is not None
        assert [m.payload["round"] for m in store.records(cid, "model")] == [1, 2, 3]
        assert all(e.approved_by == "policy:autonomous" for e in exps)
        hyps = store.hypotheses(cid).values()
        assert any(h.evidence_for or h.evidence_against for h in hyps)
        assert c.run().done  # running a finished campaign again does nothing
        assert len(store.experiments(cid)) == 9


def test_llm_candidates_are_validated_and_a_broken_reply_falls_back(spec, tmp_path, fake_labs, quiet) -> None:
    reply = {
        "hypotheses": [
            {
                "statement": "Low basal and moderate boluses are safe.",
                "candidates": [
                    {"basal": 0.3, "carb_ratio": 30.0, "rationale": "in bounds"},
                    {"basal": 0.4, "carb_ratio": 25.0, "rationale": "in bounds"},
                    {"basal": 0.5, "carb_ratio": 35.0, "rationale": "in bounds"},
                    {"basal": 9.0, "carb_ratio": 20.0, "rationale": "out of bounds"},
                    {"basal": 0.3, "carb_ratio": 30.0, "rationale": "duplicate"},
                ],
            }
        ]
    }
    script = ScriptedLLM([reply, "not json at all"])
    proposer = LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted"), client=script.client())
    with _open(spec.with_overrides(budget={"rounds": 2, "batch": 3}), tmp_path, fake_labs, quiet, proposer=proposer) as c:
        assert c.run().done
        invalid = [r.payload for r in c.store.records(c.campaign_id, "invalid_proposal")]
        reasons = [p["reason"] for p in invalid]
        assert any("basal = 9 U/h is outside the hard limits" in r for r in reasons)
        assert any("duplicate" in r for r in reasons)
        assert any("did not match the schema" in r for r in reasons)
        assert all(e.intervention.violations(c.spec) == [] for e in c.store.experiments(c.campaign_id))
        sources = {p.source for p in c.store.proposals(c.campaign_id, round=1)} | {
            p.source for p in c.store.proposals(c.campaign_id, round=2)
        }
        assert sources == {"llm", "offline"}
        assert len(script.requests) == 2


def test_a_reply_with_no_valid_candidate_falls_back_and_the_campaign_goes_on(spec, tmp_path, fake_labs, quiet) -> None:
    """Candidates that all fail the hard limits once left the planner an empty menu: the round crashed,
    and so did every resume from the checkpoint after `validate`."""
    only_bad = {
        "hypotheses": [
            {"statement": "Much more basal.", "candidates": [{"basal": 9.0, "carb_ratio": 20.0, "rationale": "out of bounds"}]}
        ]
    }
    script = ScriptedLLM([only_bad])
    proposer = LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted"), client=script.client())
    with _open(spec.with_overrides(budget={"rounds": 1, "batch": 3}), tmp_path, fake_labs, quiet, proposer=proposer) as c:
        assert c.run().done
        reasons = [r.payload["reason"] for r in c.store.records(c.campaign_id, "invalid_proposal")]
        assert any("basal = 9 U/h is outside the hard limits" in r for r in reasons)
        exps = c.store.experiments(c.campaign_id)
        assert len(exps) == 3 and {p.source for p in c.store.proposals(c.campaign_id, round=1)} == {"offline"}


def test_review_gate_stops_before_submission_and_applies_decisions(spec, tmp_path, fake_labs, quiet) -> None:
    with _open(spec, tmp_path, fake_labs, quiet, settings=AgentSettings(review=True)) as c:
        first = c.run()
        assert first.review is not None and not first.done
        assert c.store.count(c.campaign_id, "submission") == 0  # nothing reaches the lab before review
        sel = first.review["selected"]
        assert len(sel) == 3
        outside = Intervention(values={**sel[2]["values"], "basal": 50.0})
        decisions = [
            Decision(proposal_key=sel[0]["proposal_key"], action="approve", by="person:ada"),
            Decision(proposal_key=sel[1]["proposal_key"], action="reject", by="person:ada", reason="too similar to #1"),
            Decision(proposal_key=sel[2]["proposal_key"], action="edit", by="person:ada", edited=outside, reason="try more"),
        ]
        second = c.review(decisions)
        assert second.review is not None and second.review["round"] == 2
        exps = c.store.experiments(c.campaign_id, round=1)
        assert [e.intervention.values for e in exps] == [sel[0]["values"]]
        assert exps[0].approved_by == "person:ada"
        stored = c.store.decisions(c.campaign_id, round=1)
        assert [d.action for d in stored] == ["approve", "reject", "reject"]
        assert "edit outside the hard limits" in stored[2].reason
        # a valid edit is submitted with the edited values
        sel2 = second.review["selected"]
        edited = Intervention(values={"basal": 0.33, "carb_ratio": 33.0})
        c.review(
            [Decision(proposal_key=sel2[0]["proposal_key"], action="edit", by="person:ada", edited=edited)]
            + [Decision(proposal_key=s["proposal_key"], action="approve", by="person:ada") for s in sel2[1:]]
        )
        values = [e.intervention.values for e in c.store.experiments(c.campaign_id, round=2)]
        assert {"basal": 0.33, "carb_ratio": 33.0} in values
        third = c.pending_review()
        assert third is not None and third["round"] == 3
        last = c.review([Decision(proposal_key=s["proposal_key"], action="approve", by="person:ada") for s in third["selected"]])
        assert last.done and last.review is None
    with Campaign(tmp_path / "run", console=quiet) as again, pytest.raises(RunDirError, match="not waiting for a review"):
        again.review([])


class GarblingLab(SimulatedLab):
    """Returns a malformed reply for the first experiment it is asked about, then behaves."""

    garbled: str | None = None

    def _poll(self, ticket):
        if self.garbled in (None, ticket.experiment_key):
            self.garbled = ticket.experiment_key
            raise MalformedResult(
                ticket.experiment_key, {"glucose": "NaN,NaN", "status": "ok?"}, "glucose is not a number series"
            )
        return super()._poll(ticket)


def test_malformed_result_is_quarantined_with_raw_payload_and_never_learned_from(spec, tmp_path, quiet) -> None:
    labs = []

    def factory(s, d):
        labs.append(GarblingLab(s, lambda x: toy_glucose_day(s, x)))
        return labs[-1]

    small = spec.with_overrides(budget={"rounds": 2, "batch": 2})
    with Campaign.create(small, tmp_path / "run", lab_factory=factory, world_config=FAST_WORLD, console=quiet) as c:
        assert c.run().done
        bad = labs[0].garbled
        q = c.store.records(c.campaign_id, "quarantine")
        assert [r.payload["experiment_key"] for r in q] == [bad]
        assert q[0].payload["raw"] == {"glucose": "NaN,NaN", "status": "ok?"}
        obs = c.store.observations(c.campaign_id)
        assert obs[bad].status == "failed" and "quarantined" in obs[bad].message
        assert sum(o.status == "ok" for o in obs.values()) == 3
        fits = [r.payload["fit"]["n_days"] for r in c.store.records(c.campaign_id, "model")]
        assert fits == [1, 3]  # the quarantined day never reached the model


def test_when_safety_removes_every_candidate_nothing_runs_and_no_review_is_asked(spec, tmp_path, fake_labs, quiet) -> None:
    # glucose never stays above 200 all day, so the model predicts P(unsafe) ~ 1 for every regimen
    strict = spec.with_overrides(safety=[{"name": "impossible", "series": "glucose", "below": 200.0, "max_probability": 0.01}])
    with _open(strict, tmp_path, fake_labs, quiet, settings=AgentSettings(review=True)) as c:
        first = c.run()
        assert first.review is not None and first.review["round"] == 1  # round 1: no model, start region
        last = c.review(
            [Decision(proposal_key=s["proposal_key"], action="approve", by="person:ada") for s in first.review["selected"]]
        )
        assert last.done and last.review is None
        assert [e.round for e in c.store.experiments(c.campaign_id)] == [1, 1, 1]
        later = [r for r in c.store.rankings(c.campaign_id) if r.round > 1]
        assert all(not r.selected and r.removed for r in later)
        assert all("exceeds the 0.01 limit (impossible)" in r.removed[0].reason for r in later)
        assert [m.payload["round"] for m in c.store.records(c.campaign_id, "model")] == [1]


def test_a_statement_made_again_is_one_hypothesis_whose_evidence_accumulates(spec, tmp_path, fake_labs) -> None:
    """The same statement in rounds 1 and 2 (spacing and case aside) is one hypothesis: round 2's
    candidates carry round 1's id and its evidence grows; the validate line says what the candidates
    it set aside were (a duplicate within the round is not a refusal by the limits)."""
    import io

    from rich.console import Console

    def reply(statement: str, points: list[tuple[float, float]]) -> dict:
        return {
            "hypotheses": [
                {"statement": statement, "candidates": [{"basal": b, "carb_ratio": c, "rationale": "r"} for b, c in points]}
            ]
        }

    statement = "Low basal and moderate boluses are safe."
    script = ScriptedLLM(
        [
            reply(statement, [(0.3, 30.0), (0.4, 25.0), (0.3, 30.0), (9.0, 20.0)]),
            reply("  low basal and moderate   boluses are SAFE.", [(0.35, 28.0), (0.45, 26.0)]),
        ]
    )
    proposer = LLMProposer(LLMSettings(base_url="http://llm.test/v1", model="scripted"), client=script.client())
    log = io.StringIO()
    console = Console(file=log, width=200)
    settings = spec.with_overrides(budget={"rounds": 2, "batch": 2})
    with Campaign.create(
        settings, tmp_path / "run", lab_factory=fake_labs, world_config=FAST_WORLD, console=console, proposer=proposer
    ) as c:
        assert c.run().done
        store, cid = c.store, c.campaign_id
        hyps = store.hypotheses(cid)
        assert len(hyps) == 1
        ((hid, h),) = hyps.items()
        assert hid.startswith("H1-") and h.statement == statement
        assert {e.round for e in store.experiments(cid)} == {1, 2}
        assert all(e.hypothesis_ids == (hid,) for e in store.experiments(cid))
        assert len(h.motivated) == 4 and len(h.evidence_for) + len(h.evidence_against) == 4
        assert len(store.records(cid, "hypothesis", key=hid, round=1)) == 2  # stated once, then its round-1 evidence
    text = log.getvalue()
    assert "validated: 2 candidates kept, 2 set aside (" in text
    assert "duplicates within the round: 1" in text and "outside the limits or malformed: 1" in text
    assert "rejected" not in text.split("validated:", 1)[1].split("\n", 1)[0]


def test_hypothesis_ids_keep_an_earlier_statement_id() -> None:
    from wetloop.agent._evidence import hypothesis_ids
    from wetloop.campaign import Hypothesis

    old = Hypothesis(id="H1-abcdef", statement="Basal matters.", source="offline", round=1)
    ids = hypothesis_ids({old.id: old}, 3, ["basal  MATTERS.", "Carb ratio matters.", "Carb ratio matters."])
    assert ids["basal  MATTERS."] == "H1-abcdef"
    assert ids["Carb ratio matters."].startswith("H3-") and len(set(ids.values())) == 2
