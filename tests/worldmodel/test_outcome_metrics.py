"""OutcomeModel against the campaign's numpy reference, and the calibration metrics on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wetloop.worldmodel import crps_ensemble, interval_coverage
from wetloop.worlds.simglucose import OutcomeModel, calibration_report, glucose_readouts, one_step_predictions

from .conftest import observe, regimen


def test_readouts_equal_the_numpy_reference(spec):
    outcome = OutcomeModel(spec)
    rng = np.random.default_rng(0)
    samples = rng.uniform(30, 260, size=(3, 6, 97))
    samples[0, 0, 10] = 53.9  # an event just below the limit
    samples[1, 2, :] = np.clip(samples[1, 2, :], 60, 260)  # none below 54
    samples[2, 3, 5] = 70.0  # the range's edge counts as in range
    got = outcome(torch.tensor(samples))
    assert set(got) == set(outcome.names)
    for i in range(3):
        for j in range(6):
            ref = glucose_readouts(samples[i, j], spec)
            assert set(ref) == set(got)
            for name, value in ref.items():
                assert got[name][i, j].item() == pytest.approx(value, abs=1e-12), name


def test_p_unsafe_is_the_fraction_of_samples_with_an_event(spec):
    outcome = OutcomeModel(spec)
    samples = torch.full((2, 10, 5), 120.0)
    samples[0, :3, 2] = 40.0  # 3 of 10 samples dip below 54
    p = outcome.p_unsafe(samples)
    assert set(p) == {"severe hypoglycaemia"}
    assert p["severe hypoglycaemia"].tolist() == pytest.approx([0.3, 0.0])


def test_utility_follows_the_objective(spec):
    outcome = OutcomeModel(spec)
    g = torch.tensor([[100.0, 200.0, 150.0, 60.0]])
    assert outcome.utility(g).item() == pytest.approx(0.5)  # maximise time in range
    minimise = spec.model_copy(update={"objective": spec.objective.model_copy(update={"direction": "minimize"})})
    assert OutcomeModel(minimise).utility(g).item() == pytest.approx(-0.5)


def test_crps_known_cases():
    obs = torch.tensor([100.0, 120.0, 80.0])
    perfect = obs.expand(20, -1)
    assert crps_ensemble(perfect, obs) == 0.0
    point = (obs + torch.tensor([5.0, -3.0, 1.0])).expand(7, -1)
    assert crps_ensemble(point, obs) == pytest.approx(3.0)  # a point forecast scores its absolute error
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, generator=rng, dtype=torch.float64) * 10 + 100
    brute = ((x - obs).abs().mean(0) - 0.5 * (x[:, None] - x[None]).abs().mean((0, 1))).mean()
    assert crps_ensemble(x, obs) == pytest.approx(brute.item(), rel=1e-9)


def test_coverage_known_cases():
    obs = torch.tensor([100.0, 120.0, 80.0, 90.0])
    wide = torch.linspace(0, 1000, 50)[:, None].expand(-1, 4)
    assert interval_coverage(wide, obs, 0.9) == 1.0
    narrow = torch.full((50, 4), 300.0)
    assert interval_coverage(narrow, obs, 0.9) == 0.0
    half = torch.cat([narrow[:, :2], wide[:, 2:]], dim=1)
    assert interval_coverage(half, obs, 0.9) == 0.5


def test_one_step_forecasts_beat_persistence(fitted, spec):
    iv = regimen(0.65, 25.0)
    fc = one_step_predictions(fitted, iv, observe(spec, iv, seed=11))
    assert fc.samples.shape == (40, 96) and fc.observed.shape == (96,) and fc.persistence.shape == (96,)
    assert fc.times_min[0] == 15.0 and fc.times_min[-1] == 1440.0
    model_crps = crps_ensemble(fc.samples, fc.observed)
    persistence_mae = (fc.persistence - fc.observed).abs().mean().item()
    assert model_crps < 0.6 * persistence_mae


def test_calibration_report_on_held_out_days(fitted, spec):
    ivs = [regimen(0.45, 16.0), regimen(0.9, 28.0)]
    days = [(iv, observe(spec, iv, seed=20 + i)) for i, iv in enumerate(ivs)]
    report = calibration_report(fitted, days, level=0.9)
    assert report.n_days == 2
    assert report.one_step_crps < report.persistence_mae
    assert 0.5 <= report.open_loop_coverage <= 1.0 and report.open_loop_crps > 0
