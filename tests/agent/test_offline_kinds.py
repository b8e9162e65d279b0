"""The generic offline proposer on every kind of variable: continuous (linear, log), integer,
categorical, set; candidates always inside the hard limits; the world's hypotheses joined in."""

from __future__ import annotations

import numpy as np
import pytest

from wetloop.agent import OfflineProposer, ProposalContext
from wetloop.agent.offline import _clip, moved_value, random_value
from wetloop.campaign import (
    CampaignSpec,
    HypothesisDraft,
    Intervention,
    Observation,
    _worlds,
    default_spec_path,
    load_spec,
)
from wetloop.worlds.simglucose import glucose_readouts


def _mixed(**changes) -> CampaignSpec:
    fields = {"world": "no-such-world", **changes}
    return CampaignSpec(
        name="kinds",
        question="Which mix works?",
        objective={"readout": "y"},
        budget={"rounds": 4, "batch": 4},
        interventions=[
            {"name": "dose", "unit": "uM", "lower": 0.01, "upper": 10.0, "start": [0.1, 1.0], "scale": "log"},
            {"name": "temp", "unit": "C", "lower": 30.0, "upper": 40.0},
            {"name": "n_doses", "kind": "integer", "lower": 1, "upper": 6, "start": [1, 3]},
            {"name": "medium", "kind": "categorical", "choices": ["rich", "poor", "serum-free"]},
            {
                "name": "cocktail",
                "kind": "set",
                "items": ["Gata1", "Pu1", "Fli1", "Klf1"],
                "levels": ["ko", "oe"],
                "min_items": 1,
                "max_items": 2,
            },
        ],
        **fields,
    )


def _history(spec: CampaignSpec, n: int, seed: int = 0) -> list[tuple[Intervention, Observation]]:
    rng = np.random.default_rng(seed)
    xs = [Intervention(values={v.name: random_value(v, rng) for v in spec.interventions}) for _ in range(n)]
    return [(x, Observation(experiment_key=f"k{i}", status="ok", readouts={"y": float(rng.normal())})) for i, x in enumerate(xs)]


def _candidates(reply) -> list[Intervention]:
    return [Intervention(values=c.values) for h in reply.hypotheses for c in h.candidates]


def test_round_one_covers_every_kind_inside_the_start_region() -> None:
    spec = _mixed()
    reply = OfflineProposer().propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=32))
    xs = _candidates(reply)
    assert len(xs) == 32 and all(not x.violations(spec) for x in xs)
    assert all(0.1 <= x.values["dose"] <= 1.0 and x.values["n_doses"] in (1.0, 2.0, 3.0) for x in xs)
    assert {x.values["medium"] for x in xs} == {"rich", "poor", "serum-free"}
    assert {len(x.values["cocktail"]) for x in xs} == {1, 2}  # min_items honoured
    assert {lv for x in xs for lv in x.values["cocktail"].values()} == {"ko", "oe"}
    statement = reply.hypotheses[0].statement
    assert (
        "dose 0.1 uM to 1 uM" in statement
        and "n_doses 1 to 3" in statement
        and "medium any of rich, poor, serum-free" in statement
    )


@pytest.mark.parametrize("seed", range(6))
def test_later_rounds_stay_inside_the_hard_limits(seed) -> None:
    spec = _mixed(seed=seed)
    history = _history(spec, 10, seed)
    for rnd in (2, 3, 4):
        reply = OfflineProposer(margin=0.5, local_scale=0.5).propose(
            ProposalContext(spec=spec, round=rnd, history=history, n_candidates=30, seed=seed)
        )
        xs = _candidates(reply)
        assert xs and all(not x.violations(spec) for x in xs), [p for x in xs for p in x.violations(spec)]
        keys = [x.key() for x in xs]
        assert len(set(keys)) == len(keys) and not set(keys) & {x.key() for x, _ in history}  # nothing repeated
        assert [h.statement.split()[0] for h in reply.hypotheses] == ["Interventions", "The", "Regions"]


def test_local_moves_sometimes_switch_a_choice_or_change_the_set() -> None:
    spec = _mixed()
    history = _history(spec, 6)
    reply = OfflineProposer(switch=0.5).propose(ProposalContext(spec=spec, round=2, history=history, n_candidates=60))
    local = reply.hypotheses[1]
    assert local.statement.startswith("The optimum lies near dose=")
    best = max(history, key=lambda t: t[1].readouts["y"])[0]
    changed = [
        c
        for c in local.candidates
        if (c.values["medium"], c.values["cocktail"]) != (best.values["medium"], best.values["cocktail"])
    ]
    assert changed and len(changed) < len(local.candidates)


def test_a_space_without_numbers_still_moves() -> None:
    spec = CampaignSpec(
        name="c",
        question="q",
        world="w",
        objective={"readout": "y"},
        budget={"rounds": 3, "batch": 2},
        interventions=[{"name": "cocktail", "kind": "set", "items": ["A", "B", "C"], "levels": ["ko", "oe"], "max_items": 2}],
    )
    first = OfflineProposer().propose(ProposalContext(spec=spec, round=1, history=[], n_candidates=24))
    assert len(_candidates(first)) > 5  # repeats (the empty set drawn twice) are dropped, not proposed twice
    later = OfflineProposer().propose(ProposalContext(spec=spec, round=2, history=_history(spec, 4), n_candidates=24))
    assert all(not x.violations(spec) for x in _candidates(later)) and len(later.hypotheses) == 2


def test_set_moves_respect_the_item_limits() -> None:
    spec = _mixed()
    var, rng = spec.variable("cocktail"), np.random.default_rng(0)
    for value in ({"Gata1": "ko"}, {"Gata1": "ko", "Pu1": "oe"}):
        moved = [moved_value(var, value, rng) for _ in range(200)]
        assert all(var.violation(m) is None for m in moved) and all(m != value for m in moved)
        assert {len(m) for m in moved} == {1, 2}  # adds, removes (down to min_items), swaps and flips all happen
    assert {moved_value(spec.variable("medium"), "rich", rng) for _ in range(50)} == {"poor", "serum-free"}


def test_numbers_are_clipped_to_the_limits() -> None:
    """The proposer once emitted carb_ratio = 50.000000000000014, refused as outside [3, 50]."""
    spec = load_spec(default_spec_path())
    carb = spec.variable("carb_ratio")
    assert _clip(carb, 50.000000000000014) == 50.0 and _clip(carb, 2.9999999999999996) == 3.0
    assert _clip(_mixed().variable("n_doses"), 6.4) == 6.0
    at_edge = Intervention(values={"basal": 3.0, "carb_ratio": 50.0})
    obs = Observation(experiment_key="k", status="ok", readouts=glucose_readouts(np.array([100.0, 150.0, 120.0]), spec))
    for rnd in range(2, 8):
        reply = OfflineProposer(local_scale=0.5).propose(
            ProposalContext(spec=spec, round=rnd, history=[(at_edge, obs)], n_candidates=48)
        )
        assert all(not x.violations(spec) for x in _candidates(reply))


class _World:
    """A world with one domain hypothesis (stands in for, e.g., the simglucose world)."""

    def hypotheses(self, ctx, safe, n):
        best = safe[0][0]
        return [HypothesisDraft(statement="the world's own idea", candidates=[{"values": {**best.values, "temp": 31.0}}])]


def test_the_worlds_hypotheses_join_the_generic_ones(monkeypatch) -> None:
    monkeypatch.setattr(_worlds, "_loaded", {})
    monkeypatch.setitem(_worlds.WORLD_REGISTRY, "test-world", _World())
    spec = _mixed(world="test-world")
    reply = OfflineProposer().propose(ProposalContext(spec=spec, round=2, history=_history(spec, 4), n_candidates=12))
    assert [h.statement for h in reply.hypotheses][-1] == "the world's own idea"
    unknown = OfflineProposer().propose(ProposalContext(spec=_mixed(), round=2, history=_history(spec, 4), n_candidates=12))
    assert len(unknown.hypotheses) == 3  # exploration, local moves, the whole space: an unregistered world adds nothing
    assert len(_candidates(reply)) == len(_candidates(unknown)) == 12  # exploration fills the menu either way


def test_regimen_hypotheses_live_with_the_simglucose_world() -> None:
    from wetloop.worlds.simglucose._hypotheses import regimen_hypotheses

    spec = load_spec(default_spec_path())
    best = Intervention(values={"basal": 0.4, "carb_ratio": 48.0})
    high_day = glucose_readouts(np.array([140.0, 260.0, 200.0, 150.0]), spec)
    ctx = ProposalContext(spec=spec, round=2, history=[])
    hyps = regimen_hypotheses(ctx, [(best, Observation(experiment_key="k", status="ok", readouts=high_day), 0.5)], 16)
    statements = [h.statement for h in hyps]
    assert statements[0].startswith("Post-meal highs (max glucose 260 mg/dL on the best day, basal=0.4 U/h, carb_ratio=48 g/U)")
    assert any("more basal insulin" in s for s in statements)
    meal = hyps[0].candidates
    assert len(meal) == 8 and all(c.values["carb_ratio"] < 48.0 for c in meal)
    assert all(not Intervention(values=c.values).violations(spec) for h in hyps for c in h.candidates)
    assert regimen_hypotheses(ProposalContext(spec=_mixed(), round=2, history=[]), [], 16) == []
