"""TrajectoryWorldModel on the synthetic patient: fitting, rollouts, bands, persistence, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wetloop.campaign import Band, Observation
from wetloop.worldmodel import (
    ModelFileError,
    NotFittedError,
    NoTrainingData,
    WorldModelError,
    interval_coverage,
)
from wetloop.worlds.simglucose import TrajectoryWorldModel, WorldModelConfig

from .conftest import observe, regimen, simulate_day

UNSEEN = regimen(0.65, 25.0)  # inside the training grid's span, but not on it


def test_fit_reports_and_learns(fitted, train_data):
    report = fitted.last_fit
    assert report.n_days == 12 and report.n_transitions == 12 * 96 and report.n_skipped == 0
    assert report.steps >= 800 and report.version == fitted.version
    assert report.final_loss < report.first_loss - 1.0  # standardised Gaussian NLL, epoch 1 vs last
    assert report.nll_one_step < 0.5  # a unit Gaussian around the mean change would score ~1.42
    assert report.rmse_one_step_mg_dl < 2.0  # per 15 min; the day's glucose moves by ~2.5 mg/dL per step


def test_more_basal_lowers_glucose_as_in_the_true_system(fitted, spec):
    low, high = regimen(0.4, 20.0), regimen(0.95, 20.0)
    samples = fitted.sample([low, high])  # (2, S, T)
    assert samples.shape == (2, 40, 97)
    predicted = samples.mean(dim=(1, 2))
    true = [simulate_day(spec, iv, seed=1, noise=0.0).mean() for iv in (low, high)]
    assert predicted[0] - predicted[1] > 0.6 * (true[0] - true[1]) > 0


def test_unseen_regimen_mostly_inside_the_band(fitted, spec):
    band = fitted.predict_band(UNSEEN, level=0.9)
    assert isinstance(band, Band) and len(band.times_min) == 97 and band.times_min[-1] == 1440.0
    assert all(lo <= med <= up for lo, med, up in zip(band.lower, band.median, band.upper))
    true = simulate_day(spec, UNSEEN, seed=42)[::5]  # the 15-min points of an unseen day
    inside = np.mean((true >= np.array(band.lower) - 1.0) & (true <= np.array(band.upper) + 1.0))
    assert inside >= 0.75
    assert np.abs(np.array(band.median) - true).mean() < 8.0  # mg/dL, over a day that spans ~90


def test_rollouts_are_seeded(fitted):
    a, b = fitted.sample([UNSEEN]), fitted.sample([UNSEEN])
    assert torch.equal(a, b)
    other = fitted.botorch_model(seed=99)(fitted.encode([UNSEEN]))
    assert not torch.equal(a[0].double(), other[:, 0])


def test_refit_is_deterministic(spec, train_data):
    config = WorldModelConfig(members=3, hidden=16, layers=1, epochs=1, min_steps=30, particles=2, seed=5)
    first, second = TrajectoryWorldModel(spec, config), TrajectoryWorldModel(spec, config)
    first.fit(train_data[:3])
    second.fit(train_data[:3])
    assert first.version == second.version
    assert torch.equal(first.sample([UNSEEN]), second.sample([UNSEEN]))


def test_non_ok_days_are_skipped_and_none_is_an_error(spec, train_data):
    config = WorldModelConfig(members=2, hidden=8, layers=1, epochs=1, min_steps=5, particles=1)
    failed = Observation(experiment_key="x", status="failed", message="pump error")
    model = TrajectoryWorldModel(spec, config)
    report = model.fit(train_data[:2] + [(UNSEEN, failed)])
    assert report.n_days == 2 and report.n_skipped == 1
    with pytest.raises(NoTrainingData, match="status 'ok'") as info:
        TrajectoryWorldModel(spec, config).fit([(UNSEEN, failed)])
    assert info.value.data == [(UNSEEN, failed)]


def test_not_fitted_says_what_to_do(spec):
    model = TrajectoryWorldModel(spec)
    assert not model.is_fitted
    for use in (model.botorch_model, lambda: model.predict_band(UNSEEN), lambda: model.version):
        with pytest.raises(NotFittedError, match=r"call `fit\(data\)`") as info:
            use()
        assert info.value.model is model


def test_a_spec_without_basal_needs_a_prehistory(spec):
    renamed = spec.interventions[0].model_copy(update={"name": "rate"})
    odd = spec.model_copy(update={"interventions": (renamed, spec.interventions[1])})
    with pytest.raises(WorldModelError, match="prehistory_basal"):
        TrajectoryWorldModel(odd)
    assert TrajectoryWorldModel(odd, WorldModelConfig(prehistory_basal=0.5)).featuriser.prehistory_u_per_block == 0.125


def test_encode_decode_round_trip(fitted, spec):
    ivs = [regimen(0.05, 3.0), regimen(3.0, 50.0), UNSEEN]
    X = fitted.encode(ivs)
    assert X.shape == (3, 2) and X[0].tolist() == [0.0, 0.0] and X[1].tolist() == [1.0, 1.0]
    back = fitted.decode(X)
    assert back[2].values == pytest.approx(UNSEEN.values)
    assert fitted.decode(torch.tensor([[1.2, -0.1]]))[0].values == pytest.approx({"basal": 3.0, "carb_ratio": 3.0})


def test_save_load_gives_identical_predictions(fitted, spec, tmp_path):
    path = fitted.save(tmp_path / "wm.pt")
    loaded = TrajectoryWorldModel.load(path, spec)
    assert loaded.version == fitted.version and loaded.last_fit == fitted.last_fit
    assert torch.equal(loaded.sample([UNSEEN]), fitted.sample([UNSEEN]))
    other_world = spec.model_copy(update={"world_options": {**spec.world_options, "meals": [[8.0, 50.0]]}})
    with pytest.raises(ModelFileError, match="another world"):
        TrajectoryWorldModel.load(path, other_world)
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(ModelFileError):
        TrajectoryWorldModel.load(tmp_path / "junk.pt", spec)


def test_config_reads_the_environment_but_arguments_win(monkeypatch):
    monkeypatch.setenv("WETLOOP_WORLDMODEL_MEMBERS", "7")
    assert WorldModelConfig().members == 7
    assert WorldModelConfig(members=6).members == 6
    with pytest.raises(ValueError, match="insulin_edges_min"):
        WorldModelConfig(insulin_edges_min=(0, 30, 15))


def test_open_loop_band_covers_a_held_out_day(fitted, spec):
    obs = observe(spec, UNSEEN, seed=7)
    samples = fitted.sample([UNSEEN])[0]
    true = torch.tensor(obs.trajectory.series["glucose"][::5])
    assert interval_coverage(samples, true, 0.9) >= 0.75
