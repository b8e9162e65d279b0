"""The acquisition functions, on hand-made tensors, BoTorch's MockModel, and the fake ensemble."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.utils.testing import MockModel, MockPosterior

from wetloop.planners import (
    CostWeightedAcquisition,
    EnsembleExpectedImprovement,
    EnsembleInformationGain,
    MaxMinDistance,
    MenuModel,
    ReadoutObjective,
    ensemble_information_gain,
)

from .fakes import FakeEnsemble, FakeOutcome, make_spec


def samples_from_member_means(means: torch.Tensor, particle_offsets: list[float]) -> torch.Tensor:
    """means (M, q, T) -> samples (S, q, T), member-major, each member's particles at mean + offset."""
    offsets = torch.tensor(particle_offsets, dtype=torch.float64)[:, None, None]
    return (means[:, None] + offsets).reshape(-1, *means.shape[1:])


def test_information_gain_matches_the_gaussian_formula_for_two_members() -> None:
    # members at +-delta, particles at +-sigma: epistemic var delta^2, aleatoric var sigma^2
    delta, sigma = 12.0, 8.0
    means = torch.tensor([[[100.0 + delta]], [[100.0 - delta]]], dtype=torch.float64)  # (M=2, q=1, T=1)
    samples = samples_from_member_means(means, [-sigma, sigma])
    ig = ensemble_information_gain(samples, members=2, particles=2, aleatoric_floor=1.0)
    assert ig.item() == pytest.approx(0.5 * math.log(1 + delta**2 / sigma**2), rel=1e-12)


def test_information_gain_is_zero_when_members_agree_and_grows_with_disagreement() -> None:
    model = FakeEnsemble()
    X = torch.tensor([[0.5, 0.0], [0.5, 0.25], [0.5, 0.5], [0.5, 1.0]], dtype=torch.float64)
    ig = EnsembleInformationGain(model, aleatoric_floor=1.0)(X.unsqueeze(-2))
    assert ig[0].item() == pytest.approx(0.0, abs=1e-12)
    assert torch.all(ig[1:] > ig[:-1])


def test_joint_information_gain_rewards_members_disagreeing_in_different_ways() -> None:
    pattern_a = torch.tensor([10.0, -10.0, 0.0, 0.0], dtype=torch.float64)
    pattern_b = torch.tensor([0.0, 0.0, 10.0, -10.0], dtype=torch.float64)
    same = torch.stack([pattern_a, pattern_a], dim=-1)[..., None] + 120  # (M=4, q=2, T=1)
    different = torch.stack([pattern_a, pattern_b], dim=-1)[..., None] + 120

    def ig(m):
        return ensemble_information_gain(samples_from_member_means(m, [-2.0, 2.0]), 4, 2, 1.0).item()

    single = ensemble_information_gain(samples_from_member_means(same[:, :1], [-2.0, 2.0]), 4, 2, 1.0).item()
    assert single < ig(same) < ig(different)
    assert ig(different) == pytest.approx(2 * single, rel=1e-9)  # orthogonal patterns add independently


def test_information_gain_stays_finite_with_one_particle_thanks_to_the_floor() -> None:
    model = FakeEnsemble(particle_offsets=(0.0,))
    ig = EnsembleInformationGain(model, aleatoric_floor=5.0)(torch.tensor([[[0.5, 1.0]]], dtype=torch.float64))
    # members at -40, -20, 0, 20, 40 mg/dL: epistemic var 800, floor var 25, one direction of
    # disagreement, seen at 5 time points taken as independent
    assert ig.item() == pytest.approx(0.5 * math.log(1 + 5 * 800 / 25), rel=1e-9)


def objective(spec=None) -> ReadoutObjective:
    spec = spec or make_spec()
    return ReadoutObjective(FakeOutcome(spec), "time_in_range", spec.objective.utility)


def test_expected_improvement_on_a_mock_model_is_the_improvement_of_deterministic_samples() -> None:
    # three candidates (b=3, q=1) with flat trajectories: all in range, half in range, all below range
    samples = torch.tensor([[[100.0, 120.0]], [[100.0, 200.0]], [[40.0, 50.0]]], dtype=torch.float64)  # (3, 1, T=2)
    ei = EnsembleExpectedImprovement(MockModel(MockPosterior(samples=samples)), best_f=0.25, objective=objective())
    values = ei(torch.zeros(3, 1, 2, dtype=torch.float64))
    assert values.tolist() == pytest.approx([0.75, 0.25, 0.0])


def test_expected_improvement_is_the_exact_average_over_all_ensemble_samples() -> None:
    model = FakeEnsemble()  # level 40 + 160a, members +-20b apart, particles +-0.5, +-1.5
    X = torch.tensor([[[0.25, 1.0]]], dtype=torch.float64)  # level 80: members at 40, 60, 80, 100, 120
    ei = EnsembleExpectedImprovement(model, best_f=0.5, objective=objective())(X)
    # in range (70-180) for members 80, 100, 120: 12 of 20 samples improve by 0.5
    assert ei.item() == pytest.approx(12 / 20 * 0.5)


def test_expected_improvement_is_higher_where_predicted_value_beats_best_f() -> None:
    model = FakeEnsemble()
    X = torch.tensor([[0.1, 0.0], [0.25, 1.0], [0.5, 0.0]], dtype=torch.float64).unsqueeze(-2)
    ei = EnsembleExpectedImprovement(model, best_f=0.5, objective=objective())(X)
    assert ei[0].item() == 0.0 and ei[0] < ei[1] < ei[2]


def composite(model, cost: float) -> CostWeightedAcquisition:
    ei = EnsembleExpectedImprovement(model, best_f=0.5, objective=objective())
    ig = EnsembleInformationGain(model, aleatoric_floor=5.0)
    return CostWeightedAcquisition(model, [(1.0, ei), (0.01, ig)], cost=cost)


def test_composite_is_the_weighted_sum_divided_by_cost_and_doubling_cost_halves_it() -> None:
    model = FakeEnsemble()
    X = torch.tensor([[0.25, 1.0], [0.5, 0.5]], dtype=torch.float64).unsqueeze(-2)
    ei = EnsembleExpectedImprovement(model, best_f=0.5, objective=objective())(X)
    ig = EnsembleInformationGain(model, aleatoric_floor=5.0)(X)
    one, two = composite(model, 1.0)(X), composite(model, 2.0)(X)
    assert one.tolist() == pytest.approx((ei + 0.01 * ig).tolist())
    assert two.tolist() == pytest.approx((one / 2).tolist())


def test_pending_points_make_the_value_what_the_candidate_adds_per_unit_of_its_own_cost() -> None:
    model = FakeEnsemble()
    pending = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    X = torch.tensor([[0.25, 0.5], [0.6, 0.2]], dtype=torch.float64).unsqueeze(-2)  # (2, 1, 2)
    acq = composite(model, 2.0)
    joint = acq(torch.cat([X, pending.expand(2, 1, 2)], dim=-2)) * 4.0  # value of each pair (cost 2 + 2)
    before = acq(pending.unsqueeze(0)) * 2.0  # value of the pending point alone
    acq.set_X_pending(pending)
    assert acq(X).tolist() == pytest.approx(((joint - before) / 2.0).tolist())
    assert acq(X).tolist() != pytest.approx(composite(model, 2.0)(X).tolist())


def test_menu_model_rolls_out_once_and_matches_the_base_model() -> None:
    base = FakeEnsemble()
    menu = torch.tensor([[0.2, 0.1], [0.5, 0.9], [0.8, 0.4]], dtype=torch.float64)
    model = MenuModel(base, menu)
    X = menu[[2, 0, 1]].reshape(3, 1, 2)
    for acq in (composite(model, 1.0), composite(model, 1.0)):
        acq(X)
        acq.set_X_pending(menu[:1])
        acq(X)
    assert base.calls == 1
    assert torch.equal(model.posterior(X).values, base.posterior(X).values)
    assert composite(model, 1.0)(X).tolist() == pytest.approx(composite(base, 1.0)(X).tolist())


def test_menu_model_asks_the_base_model_for_points_off_the_menu() -> None:
    base = FakeEnsemble()
    model = MenuModel(base, torch.tensor([[0.2, 0.1]], dtype=torch.float64))
    off = torch.tensor([[[0.3, 0.3]]], dtype=torch.float64)
    assert model.lookup(off) is None
    assert torch.equal(model.posterior(off).values, base.posterior(off).values)


def test_max_min_distance_measures_to_the_reference_and_within_the_batch() -> None:
    acq = MaxMinDistance(torch.tensor([[0.0, 0.0]], dtype=torch.float64))
    X = torch.tensor([[[1.0, 0.0]], [[0.3, 0.4]]], dtype=torch.float64)
    assert acq(X).tolist() == pytest.approx([1.0, 0.5])
    assert acq(torch.tensor([[[1.0, 1.0], [1.0, 0.9]]], dtype=torch.float64)).item() == pytest.approx(0.1)
    assert MaxMinDistance(torch.zeros(0, 2))(X).tolist() == pytest.approx([math.sqrt(2)] * 2)


def test_readout_objective_applies_the_spec_direction() -> None:
    spec = make_spec().with_overrides(objective={"readout": "mean_glucose", "direction": "target", "target_value": 120})
    samples = torch.tensor([[[100.0, 120.0], [150.0, 150.0]]], dtype=torch.float64)  # (S=1, q=2, T=2)
    values = ReadoutObjective(FakeOutcome(spec), "mean_glucose", spec.objective.utility)(samples)
    assert values[0].tolist() == pytest.approx([-10.0, -30.0])
