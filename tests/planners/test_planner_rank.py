"""Planner.rank end to end on the fake world: safety, selection, first round, ranks, errors, config."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from pydantic import ValidationError

from wetloop.campaign import Intervention, Observation, Ranking, WetloopError
from wetloop.planners import EmptyMenu, Planner, PlannerConfig, PlannerError, WorldModelMismatch

from .fakes import FakeEnsemble, FakeWorld, a_for_level, make_spec, observed, proposal

PARTICLES = (-1.5, -0.5, 0.5, 1.5)


def expected_p_unsafe(a: float, b: float) -> float:
    """P(glucose < 54) of the fake world, counted sample by sample from its defining formula."""
    samples = [40 + 160 * a + (m - 2) * 20 * b + e for m in range(5) for e in PARTICLES]
    return sum(s < 54 for s in samples) / len(samples)


def grid(a_values, b_values):
    return [proposal(a, b) for a, b in itertools.product(a_values, b_values)]


def test_safety_filter_removes_exactly_the_candidates_over_the_limit_with_reasons(spec, world) -> None:
    menu = grid([a_for_level(55), a_for_level(74), a_for_level(75), a_for_level(90), 0.6], [0.0, 0.5, 1.0])
    ranking = Planner(spec).rank(menu, world, [], round=2)
    removed = {r.proposal.intervention.key(): r for r in ranking.removed}
    for p in menu:
        a, b = p.intervention.values["a"], p.intervention.values["b"]
        expected = expected_p_unsafe(a, b)
        assert (p.intervention.key() in removed) == (expected > 0.05), (a, b, expected)
        if expected > 0.05:
            removal = removed[p.intervention.key()]
            assert removal.p_unsafe == pytest.approx(expected)
            assert removal.limit == "severe hypoglycaemia"
            assert removal.reason == (
                f"predicted P(glucose < 54 mg/dL) = {expected:.2f} exceeds the 0.05 limit (severe hypoglycaemia)"
            )
    boundary = next(r for r in ranking.ranked if r.proposal.intervention.values == {"a": a_for_level(75), "b": 0.5})
    assert boundary.score.p_unsafe == pytest.approx(0.05)  # exactly at the limit: kept
    assert all(r.score.p_unsafe <= 0.05 for r in ranking.ranked)


def test_already_run_points_are_never_selected_and_are_listed_last(spec, world) -> None:
    menu = grid([0.3, 0.45, 0.6, 0.75], [0.0, 0.5, 1.0])
    first = Planner(spec).rank(menu, world, [], round=2)
    ran = [r.proposal.intervention for r in first.selected]
    # the same points as the lab recorded them, a hair off in the 9th digit: still the same experiment
    history = [observed(Intervention(values={k: v * (1 + 1e-9) for k, v in x.values.items()}), 0.5) for x in ran]
    second = Planner(spec).rank(menu, world, history, round=3)
    ran_keys = {x.key() for x in ran}
    assert len(second.selected) == spec.budget.batch
    assert not ran_keys & {r.proposal.intervention.key() for r in second.selected}
    assert [r.proposal.intervention.key() in ran_keys for r in second.ranked][-len(ran) :] == [True] * len(ran)


@pytest.mark.parametrize("batch", [1, 3])
def test_batch_has_q_distinct_points_ranked_first_with_bands(batch: int) -> None:
    spec = make_spec(batch=batch)
    world = FakeWorld(spec)
    menu = grid([0.3, 0.45, 0.6, 0.75], [0.0, 0.3, 0.6, 1.0])
    ranking = Planner(spec).rank(menu, world, [], round=2)
    selected = ranking.selected
    assert len(selected) == batch == len({r.proposal.intervention.key() for r in selected})
    assert [r.rank for r in selected] == list(range(1, batch + 1))
    assert all(r.band is not None and r.band.series == "glucose" for r in selected)
    assert all(r.band is None for r in ranking.ranked if not r.selected)
    assert world.band_calls == spec.budget.batch
    assert world.model.calls == 1  # one posterior over the whole menu, reused by the greedy loop


def test_ranks_and_breakdowns_are_consistent(spec, world) -> None:
    menu = grid([a_for_level(60), 0.3, 0.5, 0.7], [0.0, 0.5, 1.0])
    ranking = Planner(spec).rank(menu, world, [observed(proposal(0.9, 0.1).intervention, 0.6)], round=4)
    assert [r.rank for r in ranking.ranked] == list(range(1, len(ranking.ranked) + 1))
    assert {r.proposal.intervention.key() for r in ranking.ranked} | {r.proposal.intervention.key() for r in ranking.removed} == {
        p.intervention.key() for p in menu
    }
    rest = [r.score.acquisition for r in ranking.ranked if not r.selected]
    assert rest == sorted(rest, reverse=True)
    for r in ranking.ranked:
        s = r.score
        assert s.acquisition == pytest.approx((s.expected_improvement + 0.01 * s.info_gain) / s.cost)
        assert 0.0 <= s.expected_value <= 1.0 and s.value_std >= 0.0 and s.cost == 1.0
    assert ranking.model_version == "fake-v1" and ranking.round == 4
    assert "best_f = 0.6" in ranking.note
    assert Ranking.model_validate_json(ranking.model_dump_json()) == ranking


def test_best_f_counts_only_safe_results(spec, world) -> None:
    safe = observed(proposal(0.9, 0.0).intervention, 0.5)
    unsafe_but_in_range = observed(proposal(0.95, 0.0).intervention, 1.0, unsafe=1.0)
    ranking = Planner(spec).rank([proposal(0.5, 0.0)], world, [safe, unsafe_but_in_range], round=2)
    (only,) = ranking.ranked
    assert "best_f = 0.5" in ranking.note
    assert only.score.expected_improvement == pytest.approx(0.5)  # level 120: every sample in range


def test_doubling_the_cost_halves_every_acquisition_and_keeps_the_batch(world) -> None:
    menu = grid([0.3, 0.5, 0.7], [0.0, 0.5, 1.0])
    cheap = Planner(make_spec(cost=1.0)).rank(menu, world, [], round=2)
    dear = Planner(make_spec(cost=2.0)).rank(menu, FakeWorld(make_spec(cost=2.0)), [], round=2)
    assert [r.proposal for r in dear.ranked] == [r.proposal for r in cheap.ranked]
    assert [r.score.acquisition for r in dear.ranked] == pytest.approx([r.score.acquisition / 2 for r in cheap.ranked])


def test_first_round_without_a_model_picks_a_space_filling_batch_deterministically() -> None:
    spec = make_spec(batch=4)
    values = [0.2 + 0.8 * i / 7 for i in range(8)]
    menu = grid(values, [i / 7 for i in range(8)])
    ranking = Planner(spec).rank(menu, None, [], round=1)
    points = torch.tensor([[r.proposal.intervention.values[k] for k in "ab"] for r in ranking.selected])
    assert len(points) == 4 and torch.pdist(points).min() >= 0.5  # greedy max-min: within 2x of the optimum 0.8
    assert all(r.score.info_gain is None and r.score.p_unsafe is None for r in ranking.ranked)
    assert ranking.model_version is None and "No world model yet" in ranking.note
    assert Planner(spec).rank(menu, None, [], round=1) == ranking


def test_first_round_moves_away_from_points_already_run() -> None:
    spec = make_spec(batch=2)
    menu = grid([0.2, 0.6, 1.0], [0.0, 0.5, 1.0])
    history = [observed(proposal(0.2, 0.0).intervention, 0.3)]
    ranking = Planner(spec).rank(menu, None, history, round=2)
    first = ranking.selected[0]
    assert first.proposal.intervention.values == {"a": 1.0, "b": 1.0}
    assert first.score.acquisition == pytest.approx(math.hypot(0.8, 1.0))
    assert ranking.ranked[-1].proposal.intervention.values == {"a": 0.2, "b": 0.0}  # run: listed last
    assert ranking.ranked[-1].score.acquisition == 0.0


def test_first_round_removes_candidates_outside_the_start_region_unless_configured_not_to() -> None:
    spec = make_spec(start_a=(0.4, 0.8))
    menu = grid([0.1, 0.5, 0.7, 0.9], [0.5])
    ranking = Planner(spec).rank(menu, None, [], round=1)
    assert sorted(r.proposal.intervention.values["a"] for r in ranking.removed) == [0.1, 0.9]
    assert "a = 0.1 u is outside the start region [0.4, 0.8]" in ranking.removed[0].reason
    relaxed = Planner(spec, PlannerConfig(start_region_first=False)).rank(menu, None, [], round=1)
    assert not relaxed.removed and len(relaxed.ranked) == 4


def test_duplicates_are_dropped_keeping_the_first(spec, world) -> None:
    menu = [proposal(0.5, 0.5, "first"), proposal(0.6, 0.2), proposal(0.5, 0.5, "second")]
    ranking = Planner(spec).rank(menu, world, [], round=2)
    assert len(ranking.ranked) == 2
    kept = next(r for r in ranking.ranked if r.proposal.intervention.values == {"a": 0.5, "b": 0.5})
    assert kept.proposal.rationale == "first" and "1 duplicate" in ranking.note


def test_fewer_survivors_than_q_are_all_selected_and_the_note_says_so(spec, world) -> None:
    menu = [proposal(0.5, 0.0), proposal(0.7, 0.3), proposal(a_for_level(50), 1.0), proposal(a_for_level(50), 0.0)]
    ranking = Planner(spec).rank(menu, world, [], round=2)
    assert len(ranking.removed) == 2 and len(ranking.selected) == 2
    assert "Only 2 candidate(s) could be selected of the batch of 3" in ranking.note


def test_nothing_selectable_gives_an_empty_batch_with_a_note(spec, world) -> None:
    menu = [proposal(0.5, 0.0)]
    ranking = Planner(spec).rank(menu, world, [observed(menu[0].intervention, 1.0)], round=2)
    assert not ranking.selected and len(ranking.ranked) == 1
    assert "Only 0 candidate(s)" in ranking.note


def test_an_empty_menu_raises_a_clear_error(spec, world) -> None:
    with pytest.raises(EmptyMenu, match="no candidate experiments.*proposer") as caught:
        Planner(spec).rank([], world, [], round=2)
    assert isinstance(caught.value, PlannerError) and isinstance(caught.value, WetloopError)
    assert caught.value.proposals == []


def test_a_float32_world_ranks_like_a_float64_one(spec) -> None:
    menu = grid([0.3, 0.5, 0.7], [0.0, 0.5, 1.0])
    single = Planner(spec).rank(menu, FakeWorld(spec, dtype=torch.float32), [], round=2)
    double = Planner(spec).rank(menu, FakeWorld(spec), [], round=2)
    assert [r.proposal for r in single.selected] == [r.proposal for r in double.selected]


class Memberless(FakeEnsemble):
    def __getattribute__(self, name: str):
        if name == "members":
            raise AttributeError(name)
        return super().__getattribute__(name)


class NoSafetyReadout:
    def readouts(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"time_in_range": ((samples >= 70) & (samples <= 180)).double().mean(-1)}


def test_a_world_model_without_what_the_planner_reads_is_named_at_fault(spec) -> None:
    menu = [proposal(0.5, 0.5)]
    bad_model = FakeWorld(spec, model=Memberless())
    with pytest.raises(WorldModelMismatch, match="members") as caught:
        Planner(spec).rank(menu, bad_model, [], round=2)
    assert caught.value.world is bad_model.model
    bad_outcome = FakeWorld(spec)
    bad_outcome.outcome = NoSafetyReadout()
    with pytest.raises(WorldModelMismatch, match="below_54_glucose"):
        Planner(spec).rank(menu, bad_outcome, [], round=2)


def test_config_reads_the_environment_and_explicit_arguments_win(monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_PLANNER_IG_WEIGHT", "0.5")
    assert PlannerConfig().ig_weight == 0.5
    assert PlannerConfig(ig_weight=0.2).ig_weight == 0.2
    with pytest.raises(ValidationError, match="both 0"):
        PlannerConfig(ei_weight=0.0, ig_weight=0.0)


def test_failed_experiments_count_as_run_but_not_towards_best_f(spec, world) -> None:
    failed = Observation(experiment_key="k", status="failed", message="pump error")
    menu = [proposal(0.5, 0.0), proposal(0.6, 0.0)]
    ranking = Planner(spec).rank(menu, world, [(menu[0].intervention, failed)], round=2)
    assert [r.proposal for r in ranking.selected] == [menu[1]]
    assert "No safe result observed yet" in ranking.note
