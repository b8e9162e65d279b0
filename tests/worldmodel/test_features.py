"""Regridding lab days and building features: window sums, the pre-history, teacher-forced pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wetloop.campaign import Observation, Trajectory
from wetloop.worldmodel import ObservationFormatError
from wetloop.worlds.simglucose import WorldModelConfig
from wetloop.worlds.simglucose._features import Featuriser, _window_sums, day_from_pair, prehistory_basal, schedules

from .conftest import observe, regimen


def test_window_sums_match_a_hand_count():
    series = torch.arange(1.0, 7.0)[None]  # blocks 0..5 hold 1..6
    sums = _window_sums(series, before=10.0, lags=[(0, 1), (1, 3)])  # this block; the two before it
    assert sums.shape == (1, 6, 2)
    assert sums[0, :, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert sums[0, :, 1].tolist() == [20, 11, 3, 5, 7, 9]  # padded with 10 before t=0


def test_day_from_pair_regrids_to_the_model_step(spec):
    iv = regimen(0.6, 20.0)
    obs = observe(spec, iv, seed=0)
    day = day_from_pair(spec, iv, obs, dt=15.0)
    assert day.steps == 96 and day.glucose.shape == (97,)
    assert np.allclose(day.glucose, np.asarray(obs.trajectory.series["glucose"])[::5])
    assert day.insulin.sum() == pytest.approx(sum(obs.trajectory.series["insulin"]))
    assert day.carbs.sum() == pytest.approx(45 + 70 + 80)
    assert day.carbs[7 * 4] == pytest.approx(45) and day.insulin[7 * 4] == pytest.approx(45 / 20 + 0.6 / 4)


def test_a_day_cut_short_gives_its_whole_blocks(spec):
    iv = regimen(0.6, 20.0)
    full = observe(spec, iv, seed=0).trajectory
    n = 50  # 49 lab steps of 3 min = 147 min -> 9 whole 15-min blocks
    cut = Trajectory(times_min=full.times_min[:n], series={k: v[:n] for k, v in full.series.items()})
    day = day_from_pair(spec, iv, Observation(experiment_key="cut", status="ok", trajectory=cut), dt=15.0)
    assert day.steps == 9


def test_missing_glucose_is_a_clear_error(spec):
    iv = regimen(0.6, 20.0)
    traj = Trajectory(times_min=(0.0, 3.0), series={"cgm": (100.0, 101.0)})
    with pytest.raises(ObservationFormatError, match="no 'glucose' series") as info:
        day_from_pair(spec, iv, Observation(experiment_key="k", status="ok", trajectory=traj), dt=15.0)
    assert info.value.observation.experiment_key == "k"


def test_missing_doses_fall_back_on_the_regimen(spec):
    iv = regimen(0.6, 20.0)
    obs = observe(spec, iv, seed=0)
    only_glucose = Trajectory(times_min=obs.trajectory.times_min, series={"glucose": obs.trajectory.series["glucose"]})
    day = day_from_pair(spec, iv, Observation(experiment_key="g", status="ok", trajectory=only_glucose), dt=15.0)
    assert np.allclose(day.insulin, schedules(spec, [iv], 15.0)[0][0].numpy())


def test_prehistory_is_the_same_for_every_candidate(spec):
    feat = Featuriser.build(spec, WorldModelConfig())
    lo, hi = spec.variable("basal").start_bounds
    assert prehistory_basal(spec, WorldModelConfig()) == pytest.approx((lo * hi) ** 0.5)
    insulin, carbs, _ = schedules(spec, [regimen(0.2, 20.0), regimen(2.0, 20.0)], 15.0)  # (2, 1, 96), (1, 96)
    u = feat.input_features(insulin[:, 0], carbs.expand(2, -1))  # (2, 96, n_inputs)
    n_ins = len(feat.insulin_lags)
    oldest = n_ins - 1  # the 6-8 h window: still all pre-history at step 8 (2 h)
    assert u[0, 8, oldest] == u[1, 8, oldest] == pytest.approx(8 * feat.prehistory_u_per_block)
    assert u[0, 8, 0] < u[1, 8, 0]  # the current block is the candidate's own
    assert prehistory_basal(spec, WorldModelConfig(prehistory_basal=0.7)) == 0.7


def test_teacher_forced_pairs_hold_the_observed_changes(spec):
    iv = regimen(0.6, 20.0)
    day = day_from_pair(spec, iv, observe(spec, iv, seed=0), dt=15.0)
    feat = Featuriser.build(spec, WorldModelConfig(glucose_lags=2))
    x, y = feat.transitions([day, day])
    assert x.shape == (192, 3 + feat.n_inputs) and y.shape == (192, 1)
    logg = np.log(day.glucose)
    assert np.allclose(y[:96, 0].numpy(), np.diff(logg), atol=1e-5)
    assert np.allclose(x[5, :3].numpy(), [logg[5], logg[5] - logg[4], logg[4] - logg[3]], atol=1e-5)
    assert x[0, 1] == 0 and x[0, 2] == 0  # a steady start: no change before t=0
