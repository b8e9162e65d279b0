"""Days that vary, richer regimens and body-weight start regions of the simglucose world (issue #16):
the distribution, the dosing it implies, the lab's days, and the world model's imagined days."""

from __future__ import annotations

import math
import warnings
from datetime import datetime

import numpy as np
import pytest
import torch

from wetloop.campaign import Experiment, Intervention, SpecError, get_world, load_spec
from wetloop.lab_adapters import wait_for
from wetloop.worlds.simglucose import SimglucoseLab, dosing_schedule
from wetloop.worlds.simglucose._cli import DAYS_SPEC
from wetloop.worlds.simglucose._days import DayVariation, MealSlot, campaign_day_seed, draw_day, held_out_seeds
from wetloop.worlds.simglucose._dosing import correction_units, spec_day
from wetloop.worlds.simglucose._features import Featuriser, imagined_days, schedules
from wetloop.worlds.simglucose._lab import days_of
from wetloop.worlds.simglucose._rollout import _correction_input
from wetloop.worlds.simglucose._start import body_weight, body_weight_start

DAYS = load_spec(DAYS_SPEC)
REGIMEN = {
    "basal_night": 0.4,
    "basal_morning": 0.8,
    "basal_afternoon": 0.6,
    "basal_evening": 0.5,
    "carb_ratio_breakfast": 15.0,
    "carb_ratio_lunch": 20.0,
    "carb_ratio_dinner": 25.0,
    "correction_factor": 50.0,
}


def test_default_days_are_simglucose_random_scenario_draw_for_draw() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from simglucose.simulation.scenario_gen import RandomScenario
    for seed in range(40):
        theirs = RandomScenario(datetime(2025, 1, 1), seed=seed).scenario["meal"]
        expected = {}
        for t, g in zip(theirs["time"], theirs["amount"]):
            expected[int(t)] = expected.get(int(t), 0.0) + float(g)
        day = draw_day(DayVariation(), seed)
        assert {m: g for m, g, _ in day.meals} == expected, seed
        assert all(a == g for _, g, a in day.meals)  # no counting error by default


def test_counting_error_changes_what_is_announced_not_what_is_eaten() -> None:
    exact = [draw_day(DayVariation(), s) for s in range(300)]
    counted = [draw_day(DayVariation(carb_count_cv=0.2), s) for s in range(300)]
    assert [[(m, g) for m, g, _ in d.meals] for d in exact] == [[(m, g) for m, g, _ in d.meals] for d in counted]
    ratios = np.array([a / g for d in counted for _, g, a in d.meals if g > 0])
    assert abs(ratios.mean() - 1.0) < 0.03 and 0.15 < ratios.std() < 0.25


def test_days_differ_by_seed_and_campaign_seeds_never_meet_held_out_ones() -> None:
    assert draw_day(DayVariation(), 1) != draw_day(DayVariation(), 2)
    assert draw_day(DayVariation(), 7) == draw_day(DayVariation(), 7)
    seeds = {campaign_day_seed(0, f"key{i}") for i in range(1000)}
    assert len(seeds) == 1000 and max(seeds) < min(held_out_seeds(20))
    assert campaign_day_seed(0, "k") != campaign_day_seed(1, "k")


def test_slot_and_option_errors_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="outside \\[earliest, latest\\]"):
        MealSlot(probability=1, hour=9, hour_sd=1, earliest=5, latest=8, grams=40, grams_sd=5)
    world = get_world("simglucose")
    both = DAYS.with_overrides(world_options={**DAYS.world_options, "meals": [[7, 40]]})
    with pytest.raises(SpecError, match="either meals .* or days"):
        world.validate_spec(both)
    regimen = {**DAYS.world_options["regimen"], "correction_factor": "isf"}
    with pytest.raises(SpecError, match="isf"):
        world.validate_spec(DAYS.with_overrides(world_options={**DAYS.world_options, "regimen": regimen}))


def test_dosing_follows_segments_carb_ratio_per_meal_and_flags_corrections() -> None:
    x = Intervention(values=REGIMEN)
    day = draw_day(
        DayVariation(
            meals=[
                MealSlot(probability=1, hour=7, hour_sd=0, earliest=7, latest=7, grams=60, grams_sd=0),
                MealSlot(probability=1, hour=19, hour_sd=0, earliest=19, latest=19, grams=50, grams_sd=0),
            ]
        ),
        3,
    )
    sched = dosing_schedule(DAYS, x, step_min=3.0, day=day)
    per_hour = sched.basal_u * 20  # U per 3-min step -> U/h
    assert per_hour[0] == pytest.approx(0.4) and per_hour[7 * 20] == pytest.approx(0.8)
    assert per_hour[13 * 20] == pytest.approx(0.6) and per_hour[23 * 20] == pytest.approx(0.5)
    assert sched.insulin_u[7 * 20] - sched.basal_u[7 * 20] == pytest.approx(60 / 15.0)  # breakfast ratio
    assert sched.insulin_u[19 * 20] - sched.basal_u[19 * 20] == pytest.approx(50 / 25.0)  # dinner ratio
    assert sched.correction_steps == (7 * 20, 19 * 20)
    assert correction_units(sched, 240.0) == pytest.approx((240 - 140) / 50.0) and correction_units(sched, 149.0) == 0.0


def test_vectorised_schedules_equal_one_candidate_at_a_time() -> None:
    xs = [Intervention(values=REGIMEN), Intervention(values={**REGIMEN, "carb_ratio_lunch": 9.0, "basal_evening": 1.1})]
    days = imagined_days(DAYS, 5, seed=0)
    insulin, carbs, corr = schedules(DAYS, xs, 15.0, days)
    for p, day in enumerate(days):
        for n, x in enumerate(xs):
            one = dosing_schedule(DAYS, x, step_min=15.0, day=day)
            assert np.allclose(insulin[n, p].numpy(), one.insulin_u)
            assert np.allclose(carbs[p].numpy(), one.carbs_g)
            assert set(torch.nonzero(corr.at[p]).flatten().tolist()) == set(one.correction_steps)
    assert corr.factor.tolist() == [50.0, 50.0]
    assert len({d.meals for d in days}) == 5  # the model imagines different days


def test_a_fixed_day_spec_is_imagined_as_itself() -> None:
    fixed = load_spec(DAYS_SPEC.with_name("patient_days.yaml"))
    opts = {k: v for k, v in fixed.world_options.items() if k != "days"} | {"meals": [[7, 45], [12, 70]]}
    spec = fixed.with_overrides(world_options=opts)
    assert imagined_days(spec, 3, seed=0) == [spec_day(spec)] * 3


def test_body_weight_start_scales_with_the_patient_and_leans_to_less_insulin() -> None:
    child = body_weight_start(DAYS.with_overrides(world_options={**DAYS.world_options, "patient": "child#001"}))
    adult = body_weight_start(DAYS.with_overrides(world_options={**DAYS.world_options, "patient": "adult#001"}))
    daily = 0.5 * body_weight("child#001")
    assert child.variable("basal_night").start == pytest.approx((0.5 * 0.45 * daily / 24, 0.45 * daily / 24), rel=1e-3)
    assert child.variable("carb_ratio_lunch").start == pytest.approx((1.2 * 500 / daily, 2.0 * 500 / daily), rel=1e-3)
    assert adult.variable("basal_night").start[1] > 2.5 * child.variable("basal_night").start[1]  # 102 kg vs 35 kg
    assert body_weight_start(child) == child  # idempotent: a resumed campaign keeps its region
    narrow = [
        v.model_dump(mode="json") | ({"upper": 0.1, "start": [0.06, 0.1]} if v.name == "basal_night" else {})
        for v in DAYS.interventions
    ]
    with pytest.raises(SpecError, match="outside its hard limits"):
        body_weight_start(DAYS.with_overrides(interventions=narrow, world_options={**DAYS.world_options, "patient": "adult#001"}))


def test_correction_enters_the_rollout_like_the_same_units_of_insulin() -> None:
    """Insulin features are linear: a correction's pre-activation equals that of the same units in the schedule."""
    from wetloop.worldmodel import GaussianEnsemble
    from wetloop.worlds.simglucose import WorldModelConfig

    feat = Featuriser.build(DAYS, WorldModelConfig())
    ens = GaussianEnsemble(3, feat.n_state + feat.n_inputs, 1, 16, 2, seed=0)
    ens.x_std.uniform_(0.5, 2.0)
    base = torch.rand(1, 40, dtype=torch.float64)
    dosed = base.clone()
    dosed[0, 10] += 1.7
    carbs = torch.zeros(1, 40, dtype=torch.float64)
    s = feat.n_state
    weight = ens.first_layer.weight[:, s:]
    for step in (10, 11, 15, 30):
        diff = (feat.input_features(dosed, carbs) - feat.input_features(base, carbs))[0, step].float() / ens.x_std[s:]
        expected = torch.einsum("w,mwh->mh", diff, weight)
        units = torch.full((3, 1, 1), 1.7)
        got = _correction_input(ens, feat, [(10, units)], step)[:, 0, 0]
        assert torch.allclose(got, expected, atol=1e-5), step


@pytest.mark.slow
def test_lab_draws_a_recorded_day_per_experiment_and_corrects_high_glucose(tmp_path) -> None:
    opts = {**DAYS.world_options, "hours": 6, "patient": "adolescent#003"}
    opts["days"] = {
        "meals": [
            {"probability": 1, "hour": 1, "hour_sd": 0.3, "earliest": 0.5, "latest": 1.5, "grams": 90, "grams_sd": 5},
            {"probability": 1, "hour": 3.5, "hour_sd": 0.3, "earliest": 3, "latest": 4, "grams": 80, "grams_sd": 5},
        ]
    }
    spec = DAYS.with_overrides(world_options=opts)
    weak = Intervention(values={**REGIMEN, "carb_ratio_breakfast": 60.0, "carb_ratio_lunch": 60.0, "correction_factor": 300.0})
    strong = Intervention(values={**weak.values, "correction_factor": 10.0})
    exps = [Experiment(campaign_id="c", round=1, intervention=x, approved_by="test") for x in (weak, strong)]
    with SimglucoseLab(spec, cache_dir=tmp_path, workers=2) as lab:
        a, b = wait_for(lab, [lab.submit(e) for e in exps], poll_s=0.1)
    assert a.status == b.status == "ok"
    for exp, obs in zip(exps, (a, b)):
        assert obs.raw["day"]["day_seed"] == campaign_day_seed(spec.seed, exp.key)
        assert all(m["eaten_g"] > 0 for m in obs.raw["day"]["meals"])
    # the same day for both regimens: replay a's seed under the strong correction
    same = days_of(spec, strong, [a.raw["day"]["day_seed"]], cache_dir=tmp_path, workers=1)[0]
    weak_units, strong_units = (sum(o.trajectory.series["insulin"]) for o in (a, same))
    cgm_at_second_meal = a.trajectory.series["cgm"][int(a.raw["day"]["meals"][1]["minute"] // 3)]
    assert cgm_at_second_meal > 150  # small boluses leave glucose high at the second meal
    assert strong_units > weak_units + 0.5 * (cgm_at_second_meal - 140) / 10.0
    assert max(same.trajectory.series["glucose"][100:]) < max(a.trajectory.series["glucose"][100:])
    assert math.isfinite(same.readouts["time_in_range"])


def test_rollouts_draw_step_noise_only_when_one_day_is_fixed() -> None:
    """Days that vary carry the spread between particles; compounding one-step draws ran away (see the config)."""
    from wetloop.worldmodel import GaussianEnsemble
    from wetloop.worlds.simglucose import WorldModelConfig
    from wetloop.worlds.simglucose._botorch import TrajectoryEnsembleModel

    fixed = DAYS.with_overrides(world_options={k: v for k, v in DAYS.world_options.items() if k != "days"} | {"meals": [[7, 45]]})
    for spec, moves in ((DAYS, False), (fixed, True)):
        feat = Featuriser.build(spec, WorldModelConfig())
        ens = GaussianEnsemble(2, feat.n_state + feat.n_inputs, 1, 8, 1, seed=0)
        model = TrajectoryEnsembleModel(spec, ens, feat, y0=(5.0, 0.1), steps=8, particles=3, seed=0)
        assert bool(model.noise[..., 0].abs().sum() > 0)  # the initial state always has its spread
        assert bool(model.noise[..., 1:].abs().sum() > 0) is moves
        forced = TrajectoryEnsembleModel(spec, ens, feat, y0=(5.0, 0.1), steps=8, particles=3, seed=0, rollout_noise=1.0)
        assert bool(forced.noise[..., 1:].abs().sum() > 0)
