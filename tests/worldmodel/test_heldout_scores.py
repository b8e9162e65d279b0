"""Scores on held-out experiments and the additive baseline, on inputs whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import energy_distance as scipy_energy_distance
from scipy.stats import norm

from tests.screen_data import data_env, needs_data  # noqa: F401
from wetloop.campaign import CampaignSpec, Intervention, Readout, Series, get_world
from wetloop.worldmodel import (
    AdditiveModel,
    Bound,
    OutcomeSamples,
    broken_share,
    crps_ensemble,
    declared_bounds,
    difference_scores,
    energy_distance,
    interval_coverage,
    menu_regret,
)

from .conftest import regimen


# -- energy distance ---------------------------------------------------------------------------------
def test_energy_distance_is_zero_for_identical_samples_and_grows_with_a_shift() -> None:
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    assert energy_distance(x, x.clone()) == pytest.approx(0.0, abs=1e-9)
    near, far = energy_distance(x, x + 0.5), energy_distance(x, x + 2.0)
    assert 0 < near < far


def test_energy_distance_of_two_points_and_scipy_in_one_dimension() -> None:
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert energy_distance(a, b) == pytest.approx(math.sqrt(2 * 5.0))  # sqrt(2|a - b|): no spread on either side
    rng = np.random.default_rng(1)
    u, v = rng.normal(0, 1, 200), rng.normal(0.7, 2, 150)
    assert energy_distance(torch.tensor(u)[:, None], torch.tensor(v)[:, None]) == pytest.approx(scipy_energy_distance(u, v))


# -- calibration of a known Gaussian (the existing scores the bench reuses) ---------------------------
def test_a_true_gaussian_forecast_covers_90_percent_and_has_the_closed_form_crps() -> None:
    g = torch.Generator().manual_seed(2)
    samples = torch.randn(4000, 2000, generator=g, dtype=torch.float64)  # N(0, 1) at 2000 points
    observed = torch.randn(2000, generator=g, dtype=torch.float64)
    assert interval_coverage(samples, observed, 0.9) == pytest.approx(0.9, abs=0.02)
    # CRPS of N(0, 1) at y = 0: 2 phi(0) - 1 / sqrt(pi)
    assert crps_ensemble(samples[:, :1], torch.zeros(1, dtype=torch.float64)) == pytest.approx(
        2 * norm.pdf(0) - 1 / math.sqrt(math.pi), abs=0.01
    )


# -- declared bounds ---------------------------------------------------------------------------------
def test_declared_bounds_come_from_series_and_readouts() -> None:
    series = [Series(name="conc"), Series(name="level", lower=None)]
    readouts = [
        Readout(name="in_window", series="conc", stat="time_in_range", low=1.0, high=2.0),
        Readout(name="exposure", series="conc", stat="auc"),
        Readout(name="peak_level", series="level", stat="max"),
        Readout(name="hit", binary=True),
    ]
    got = {b.target: (b.kind, b.lower, b.upper) for b in declared_bounds(series, readouts)}
    assert got == {
        "conc": ("series", 0.0, None),
        "in_window": ("readout", 0.0, 1.0),
        "exposure": ("readout", 0.0, None),
        "hit": ("readout", 0.0, 1.0),
    }


def test_broken_share_counts_each_sampled_outcome_once() -> None:
    conc = torch.ones(4, 2, 5)  # (S, n, T)
    conc[0, 0, 3] = -0.1  # a negative concentration at one time
    conc[1, 1, :] = -1.0  # all times: still one outcome
    frac = torch.full((4, 2), 0.5)
    frac[0, 0] = 1.2  # the same outcome as the first break: counted once
    frac[2, 1] = 1.5
    samples = OutcomeSamples({"frac": frac}, {"conc": conc}, tuple(range(5)))
    bounds = [Bound("series", "conc", 0.0), Bound("readout", "frac", 0.0, 1.0), Bound("readout", "absent", 0.0)]
    share, applied = broken_share(samples, bounds)  # type: ignore[misc]
    assert share == pytest.approx(3 / 8)
    assert applied == ["conc >= 0", "0 <= frac <= 1"]
    assert broken_share(OutcomeSamples({"other": frac}), bounds) is None


# -- differences and menus ------------------------------------------------------------------------------
def test_difference_scores_of_a_perfect_a_constant_and_a_reversed_prediction() -> None:
    y = np.array([0.1, 0.4, 0.2, 0.9])
    assert difference_scores(y.copy(), y) == (pytest.approx(0.0), 1.0)
    i, j = np.triu_indices(4, k=1)
    mae, sign = difference_scores(np.zeros(4), y)
    assert mae == pytest.approx(np.abs(y[i] - y[j]).mean()) and sign == 0.5  # ties count one half
    assert difference_scores(-y, y)[1] == 0.0


def test_menu_regret_of_a_perfect_a_blind_and_an_unsafe_pick() -> None:
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    safe = np.ones(5, dtype=bool)
    assert menu_regret(y, safe, y, safe, size=5, menus=3) == (0.0, 0.0, 3)
    blind = menu_regret(np.zeros(5), safe, y, safe, size=5, menus=3)
    assert blind is not None and blind[0] == pytest.approx(5.0 - y.mean())  # a tie over the menu: the mean of all
    unsafe = np.array([True, True, True, False, True])  # the best observed one broke a limit
    regret, share, _ = menu_regret(y, safe, y, unsafe, size=5, menus=1)  # type: ignore[misc]
    assert share == 1.0 and regret == pytest.approx(4.0 - 1.0)  # worth the worst safe one, against the best safe one
    careful = menu_regret(y, unsafe, y, unsafe, size=5, menus=1)  # it predicted the limit: picks the best safe
    assert careful == (0.0, 0.0, 1)
    assert menu_regret(y, safe, y, np.zeros(5, dtype=bool), size=5, menus=2) is None


# -- the additive baseline ----------------------------------------------------------------------------
def _spec(variables: list[dict]) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "additive-test",
            "question": "q",
            "world": "custom",
            "interventions": variables,
            "readouts": [{"name": "y"}],
            "objective": {"readout": "y"},
            "budget": {"rounds": 1, "batch": 1},
        }
    )


NUMERIC = [{"name": "a", "lower": 0.0, "upper": 1.0}, {"name": "b", "lower": 0.0, "upper": 1.0}]


def _grid(points: list[tuple[float, float]]) -> list[Intervention]:
    return [Intervention(values={"a": a, "b": b}) for a, b in points]


def test_additive_model_predicts_unseen_combinations_of_additive_effects() -> None:
    spec = _spec(NUMERIC)
    rng = np.random.default_rng(3)
    train, test = _grid(list(rng.uniform(0, 1, (30, 2)))), _grid(list(rng.uniform(0, 1, (10, 2))))

    def truth(xs: list[Intervention], interact: bool) -> np.ndarray:
        a, b = (np.array([x.number(v) for x in xs]) for v in ("a", "b"))
        return np.stack([2 * a**3 - a + b**2, 4 * a * b if interact else a - b], axis=-1)  # cubic at most in each

    model = AdditiveModel(spec).fit(train, truth(train, False))
    mean, sd = model.predict(test)
    assert np.abs(mean - truth(test, False)).max() < 0.02 and mean.shape == sd.shape == (10, 2)
    # an interaction is what it cannot add up
    inter = AdditiveModel(spec).fit(train, truth(train, True)).predict(test)[0][:, 1]
    assert np.abs(inter - truth(test, True)[:, 1]).mean() > 0.1


def test_additive_model_intervals_cover_noise_it_was_fitted_on() -> None:
    spec = _spec(NUMERIC)
    rng = np.random.default_rng(4)
    xs = _grid(list(rng.uniform(0, 1, (400, 2))))
    a = np.array([x.number("a") for x in xs])
    y = (2 * a + rng.normal(0, 0.3, len(xs)))[:, None]
    model = AdditiveModel(spec).fit(xs[:200], y[:200])
    draws = torch.as_tensor(model.sample(xs[200:], samples=2000, seed=0)[..., 0])
    assert interval_coverage(draws, torch.as_tensor(y[200:, 0]), 0.9) == pytest.approx(0.9, abs=0.05)


def test_additive_model_of_a_set_adds_the_single_clamps() -> None:
    spec = _spec([{"name": "mix", "kind": "set", "items": ["p", "q", "r"], "levels": ["ko", "oe"], "max_items": 3}])
    effect = {("p", "ko"): 0.3, ("p", "oe"): -0.2, ("q", "ko"): 0.1, ("q", "oe"): 0.4, ("r", "ko"): -0.3, ("r", "oe"): 0.2}

    def y(mixes: list[dict[str, str]]) -> np.ndarray:
        return np.array([[0.5 + sum(effect[c] for c in m.items())] for m in mixes])

    singles = [{}] + [{g: lv} for g, lv in effect]
    pairs = [{"p": "ko", "q": "oe"}, {"q": "ko", "r": "oe"}, {"p": "oe", "r": "ko"}]
    unseen = [{"p": "ko", "q": "ko", "r": "oe"}, {"p": "oe", "q": "oe"}]
    model = AdditiveModel(spec).fit([Intervention(values={"mix": m}) for m in singles + pairs], y(singles + pairs))
    mean, _ = model.predict([Intervention(values={"mix": m}) for m in unseen])
    assert mean == pytest.approx(y(unseen), abs=0.03)


def test_additive_model_says_when_nothing_combines() -> None:
    one_choice = _spec([{"name": "drug", "kind": "categorical", "choices": ["x", "y"]}])
    assert "nothing combines" in (AdditiveModel.not_applicable(one_choice) or "")
    open_list = one_choice.model_copy(
        update={"interventions": (one_choice.interventions[0].model_copy(update={"choices": None}),)}
    )
    assert "open list" in (AdditiveModel.not_applicable(open_list) or "")
    with pytest.raises(ValueError, match="nothing combines"):
        AdditiveModel(one_choice)
    assert AdditiveModel.not_applicable(_spec(NUMERIC)) is None


# -- the worlds' own forecasts (`World.forecast`) -------------------------------------------------------
def test_the_glucose_world_forecasts_its_trajectories_and_the_readouts_of_them(spec, fitted) -> None:
    world = get_world("simglucose")
    out = world.forecast(fitted, spec, [regimen(0.4, 15.0), regimen(1.0, 30.0)])
    glucose = out.series["glucose"]
    assert glucose.shape == (fitted.config.members * fitted.config.particles, 2, len(out.times_min))
    assert out.times_min[1] - out.times_min[0] == fitted.config.dt_min
    assert out.readouts["mean_glucose"].numpy() == pytest.approx(glucose.mean(-1).numpy())
    assert torch.equal(glucose, fitted.sample([regimen(0.4, 15.0), regimen(1.0, 30.0)]).transpose(0, 1).double())


@needs_data
def test_the_screen_world_draws_distinct_choosable_genes_and_hit_draws(data_env) -> None:
    from wetloop.worlds.crispr_screen import ScreenWorldModel
    from wetloop.worlds.crispr_screen._hgnc import load_essentials

    world = get_world("crispr_screen")
    spec = world.example_spec()
    xs = world.bench_interventions(spec, 60, np.random.default_rng(0))
    genes = [x.values["gene"] for x in xs]
    assert len(set(genes)) == 60 and not set(genes) & set(load_essentials())
    model = ScreenWorldModel(spec)
    out = world.forecast(model, spec, xs)
    hit = out.readouts["hit"]
    assert hit.shape == (16 * model.config.members, 60) and set(hit.unique().tolist()) <= {0.0, 1.0}
    p = model.probs[:, model.encode(xs)[:, 0].long()].double().mean(0)
    assert hit.mean(0).numpy() == pytest.approx(p.numpy(), abs=0.08)  # Bernoulli draws of the members' P(hit)
    assert torch.equal(out.mean("hit"), p)  # its mean is the probability itself, not the draws' noisy mean
    with pytest.raises(ValueError, match="not in the library"):
        world.forecast(model, spec, [Intervention(values={"gene": "NOT_A_GENE"})])
