"""The generic planner on experiments other than a glucose day: every variable kind, scalar readouts,
per-candidate cost, IG on readouts rather than raw samples, limits above and on readouts, config keys."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from wetloop.campaign import Observation
from wetloop.planners import (
    EnsembleInformationGain,
    Planner,
    PlannerConfig,
    PlannerError,
    WorldModelMismatch,
    ensemble_information_gain,
    readout_features,
)

from .fakes import FakeScalarWorld, FakeWorld, a_for_level, make_mixed_spec, make_spec, mixed, proposal

MENU = [mixed(d, m, c) for d in (2, 5, 8, 9, 10) for m in ("rich", "lean") for c in ({}, {"g1": "ko"}, {"g2": "oe", "g3": "ko"})]


def by_values(ranking) -> dict[str, object]:
    return {r.proposal.intervention.key(): r for r in ranking.ranked}


# -- every variable kind ----------------------------------------------------------------------------


def test_mixed_variable_kinds_rank_through_a_scalar_world_without_bands() -> None:
    spec = make_mixed_spec(batch=3)
    ranking = Planner(spec).rank(MENU, FakeScalarWorld(spec), [], round=2)
    assert len(ranking.selected) == 3 == len({r.proposal.intervention.key() for r in ranking.selected})
    assert all(r.band is None for r in ranking.ranked)  # the world has no predict_band
    assert len(ranking.ranked) + len(ranking.removed) == len(MENU)
    best = ranking.selected[0].proposal.intervention.values
    assert best["medium"] == "rich" and best["dose"] == 8.0  # highest viability among the safe doses


def test_the_first_round_encodes_every_kind_and_the_start_region_only_limits_numbers() -> None:
    spec = make_mixed_spec(batch=4)
    ranking = Planner(spec).rank(MENU, None, [], round=1)
    assert sorted({r.proposal.intervention.values["dose"] for r in ranking.removed}) == [8.0, 9.0, 10.0]
    assert "dose = 8 uM is outside the start region [0, 6]" in ranking.removed[0].reason
    picked = [r.proposal.intervention.values for r in ranking.selected]
    assert len(picked) == 4 and len({(p["medium"], tuple(sorted(p["clamp"].items()))) for p in picked}) >= 3
    assert Planner(spec).rank(MENU, None, [], round=1) == ranking


def test_a_categorical_without_choices_gets_a_seeded_random_first_batch() -> None:
    spec = make_spec(batch=2).model_copy(
        update={
            "interventions": (
                *make_spec().interventions,
                make_mixed_spec().interventions[1].model_copy(update={"choices": None, "name": "gene"}),
            )
        }
    )
    menu = [
        proposal(0.5, 0.5).model_copy(
            update={
                "intervention": proposal(0.5, 0.5).intervention.model_copy(update={"values": {"a": 0.5, "b": 0.5, "gene": g}})
            }
        )
        for g in ("STAT1", "IRF1", "JAK2", "MYC")
    ]
    ranking = Planner(spec).rank(menu, None, [], round=1)
    assert len(ranking.selected) == 2 and "drawn at random (seed 0)" in ranking.note
    assert Planner(spec).rank(menu, None, [], round=1) == ranking


# -- per-candidate cost -----------------------------------------------------------------------------


def test_each_candidate_is_divided_by_its_own_cost() -> None:
    spec = make_mixed_spec(per_item=2.0)
    ranking = Planner(spec).rank(MENU, FakeScalarWorld(spec), [], round=2)
    for r in ranking.ranked:
        s = r.score
        assert s.cost == 1.0 + 2.0 * len(r.proposal.intervention.values["clamp"])
        assert s.acquisition == pytest.approx((s.expected_improvement + 0.01 * s.info_gain) / s.cost)


def test_a_dear_clamp_loses_the_rank_a_free_one_wins() -> None:
    two_clamps, none = mixed(5, "rich", {"g2": "oe", "g3": "ko"}), mixed(5, "rich")
    menu = [none, two_clamps]
    free = Planner(make_mixed_spec(batch=1)).rank(menu, FakeScalarWorld(make_mixed_spec()), [], round=2)
    dear = Planner(make_mixed_spec(batch=1, per_item=5.0)).rank(menu, FakeScalarWorld(make_mixed_spec()), [], round=2)
    # same mean viability; the clamped one is uncertain, so it has more EI and IG: first while clamps are free
    assert free.selected[0].proposal == two_clamps
    assert dear.selected[0].proposal == none


def test_a_batch_prefers_what_a_candidate_adds_per_unit_of_its_cost() -> None:
    spec = make_mixed_spec(batch=2, per_item=0.5)
    menu = [
        mixed(5, "rich", {"g1": "ko"}),
        mixed(5, "rich", {"g1": "oe"}),
        mixed(5, "rich", {"g2": "oe", "g3": "ko"}),
        mixed(2, "lean"),
    ]
    ranking = Planner(spec).rank(menu, FakeScalarWorld(spec), [], round=2)
    # the first pick's viability is unbeaten by the low-dose lean one, which would add nothing at any cost
    assert mixed(2, "lean") not in [r.proposal for r in ranking.selected]


def test_the_first_round_takes_the_cheapest_of_equally_far_candidates_first() -> None:
    spec = make_mixed_spec(batch=1, per_item=5.0)
    menu = [mixed(3, "rich", {"g1": "ko", "g2": "ko"}), mixed(3, "rich", {"g1": "ko"}), mixed(3, "rich")]
    ranking = Planner(spec).rank(menu, None, [], round=1)
    (first,) = ranking.selected
    assert first.proposal == mixed(3, "rich") and first.score.cost == 1.0
    assert first.score.acquisition == pytest.approx(math.sqrt(10))  # the unit cube's diameter, d = 10, cost 1


# -- information gain on readouts -------------------------------------------------------------------


def test_information_gain_on_a_fraction_readout_is_not_crushed_by_a_glucose_floor() -> None:
    spec = make_mixed_spec()
    world = FakeScalarWorld(spec)
    clamped = mixed(5, "rich", {"g2": "oe", "g3": "ko"})
    ranking = Planner(spec).rank(MENU, world, [], round=2)
    ig = by_values(ranking)[clamped.intervention.key()].score.info_gain
    raw = world.model.posterior(world.encode([clamped.intervention])).values  # (S, 1, 2)
    old = ensemble_information_gain(raw, world.model.members, world.model.particles, aleatoric_floor=5.0).item()
    assert old < 0.01 and ig > 1.0  # members disagree by +-0.2 in viability: a few nats, not a few thousandths
    unclamped = by_values(ranking)[mixed(5, "rich").intervention.key()].score.info_gain
    assert unclamped == pytest.approx(0.0, abs=1e-6)  # members agree


def test_disagreement_far_from_every_limit_and_outside_the_objective_counts_little(spec) -> None:
    narrow = spec.with_overrides(world_options={"glucose_range": [70.0, 120.0]})
    high = proposal(1.0, 1.0)  # levels 160..240: out of range for every member, far above 54
    edge = proposal(a_for_level(110), 0.5)  # levels 90..130: members disagree about time in range
    ranking = Planner(narrow).rank([high, edge], FakeWorld(narrow), [], round=2)
    ig = {r.proposal.intervention.key(): r.score.info_gain for r in ranking.ranked}
    assert ig[high.intervention.key()] < 0.05 and ig[edge.intervention.key()] > 1.0
    world = FakeWorld(narrow)
    raw = EnsembleInformationGain(world.model, aleatoric_floor=5.0)(world.encode([high.intervention, edge.intervention])[:, None])
    assert raw[0] > raw[1]  # on raw glucose, the hopeless candidate looked the more informative


def test_a_declared_fraction_readout_gets_a_floor_of_one_percent(spec) -> None:
    declared = spec.with_overrides(
        readouts=[{"name": "time_in_range", "series": "glucose", "stat": "time_in_range", "low": 70.0, "high": 180.0}]
    )
    ranking = Planner(declared).rank([proposal(0.5, 0.5), proposal(0.3, 1.0)], FakeWorld(declared), [], round=2)
    assert "time_in_range (floor 0.01)" in ranking.note


# -- safety on readouts, above and two-sided ----------------------------------------------------------


def test_a_limit_above_on_a_readout_removes_exactly_the_toxic_doses() -> None:
    spec = make_mixed_spec()
    ranking = Planner(spec).rank(MENU, FakeScalarWorld(spec), [], round=2)
    assert {r.proposal.intervention.values["dose"] for r in ranking.removed} == {9.0, 10.0}
    assert {r.proposal.intervention.values["dose"] for r in ranking.ranked} == {2.0, 5.0, 8.0}  # 0.8 is not above
    assert ranking.removed[0].reason == "predicted P(toxicity > 0.8 AU) = 1.00 exceeds the 0.1 limit (toxic)"
    assert ranking.removed[0].limit == "toxic" and ranking.removed[0].p_unsafe == 1.0


def test_a_two_sided_series_limit_is_read_from_the_series_extremes(spec) -> None:
    two_sided = spec.with_overrides(
        safety=[{"name": "excursion", "series": "glucose", "below": 54.0, "above": 190.0, "max_probability": 0.05}]
    )
    menu = [proposal(a, b) for a in (0.2, 0.5, 0.9, 1.0) for b in (0.0, 1.0)]
    ranking = Planner(two_sided).rank(menu, FakeWorld(two_sided), [], round=2)
    for p in menu:
        a, b = p.intervention.values["a"], p.intervention.values["b"]
        levels = [40 + 160 * a + (m - 2) * 20 * b + e for m in range(5) for e in (-1.5, -0.5, 0.5, 1.5)]
        expected = sum(g < 54 or g > 190 for g in levels) / 20
        removed = {r.proposal.intervention.key(): r for r in ranking.removed}
        assert (p.intervention.key() in removed) == (expected > 0.05)
        if expected > 0.05:
            assert removed[p.intervention.key()].reason == (
                f"predicted P(glucose < 54 mg/dL or glucose > 190 mg/dL) = {expected:.2f} exceeds the 0.05 limit (excursion)"
            )


def test_undeclared_units_are_left_out_of_reasons() -> None:
    spec = make_spec().with_overrides(series=[])
    ranking = Planner(spec).rank([proposal(a_for_level(50), 0.0)], FakeWorld(spec), [], round=2)
    assert ranking.removed[0].reason.startswith("predicted P(glucose < 54) = 1.00")


def test_a_limit_on_a_readout_the_world_does_not_give_names_what_is_missing() -> None:
    spec = make_mixed_spec().with_overrides(
        safety=[{"name": "stress", "readout": "stress", "above": 1.0, "max_probability": 0.1}]
    )
    with pytest.raises(WorldModelMismatch, match="neither a 'above_1_stress' readout nor readout 'stress'"):
        Planner(spec).rank(MENU, FakeScalarWorld(spec), [], round=2)


def test_a_cost_that_is_not_positive_is_an_error_that_names_the_candidate() -> None:
    spec = make_spec().with_overrides(  # a variable below 0 with a positive rate can cost less than nothing
        interventions=[{"name": "a", "lower": -10.0, "upper": 1.0}, {"name": "b", "lower": 0.0, "upper": 1.0}],
        cost={"per_experiment": 1.0, "per_unit": {"a": 1.0}},
    )
    with pytest.raises(PlannerError, match="cost of -4; every candidate must cost more than 0"):
        Planner(spec).rank([proposal(-5.0, 0.5)], FakeWorld(spec), [], round=2)


# -- configuration ----------------------------------------------------------------------------------


def test_config_rejects_unknown_keys_as_arguments_and_in_the_environment(monkeypatch) -> None:
    with pytest.raises(ValidationError, match="ig_wieght"):
        PlannerConfig(ig_wieght=5)
    monkeypatch.setenv("WETLOOP_PLANNER_IG_WIEGHT", "5")
    with pytest.raises(ValidationError, match="WETLOOP_PLANNER_IG_WIEGHT"):
        PlannerConfig()


def test_history_sets_the_best_f_of_a_scalar_campaign() -> None:
    spec = make_mixed_spec()
    ran = mixed(2, "lean")
    history = [(ran.intervention, Observation(experiment_key="k", status="ok", readouts={"viability": 0.5, "toxicity": 0.2}))]
    ranking = Planner(spec).rank(MENU, FakeScalarWorld(spec), history, round=2)
    assert "best_f = 0.5" in ranking.note
    assert torch.tensor([r.score.expected_improvement for r in ranking.ranked]).min() >= 0.0


def test_once_a_safe_result_exists_disagreement_about_clearly_worse_candidates_counts_little(spec) -> None:
    declared = spec.with_overrides(
        readouts=[{"name": "time_in_range", "series": "glucose", "stat": "time_in_range", "low": 70.0, "high": 180.0}]
    )
    members = torch.tensor([[0.1, 0.9], [0.3, 0.98]], dtype=torch.float64)  # (M=2, n=2): a worse and a near candidate

    def spread(incumbent):
        (objective, _) = readout_features(
            declared, {"time_in_range": members}, [], declared.readouts, 0.01, 0.25, incumbent=incumbent
        )
        values = objective({"time_in_range": members})
        return (values[1] - values[0]).abs().tolist()  # members' disagreement per candidate, in floor units

    worse, near = spread(None)
    assert worse == pytest.approx(20.0) and near == pytest.approx(8.0)  # raw: the worse one looks more informative
    worse, near = spread(1.0)
    assert near > 7.0 and worse < 0.2  # against the incumbent: the near one is what the campaign needs to know
