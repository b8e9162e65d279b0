"""The spec language for any experiment: variable kinds, declared readouts, safety limits, costs, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from wetloop.campaign import (
    CampaignSpec,
    Intervention,
    Observation,
    Readout,
    SafetyLimit,
    SpecError,
    Trajectory,
    Variable,
    computed_readouts,
    get_world,
    observed_unsafe,
    unsafe_readout_name,
    world_names,
)

COCKTAIL = Variable(name="cocktail", kind="set", items=("Gata1", "Pu1", "Cebpa"), levels=("ko", "oe"), max_items=2)


def spec(**extra) -> CampaignSpec:
    base = dict(
        name="s",
        question="q",
        world="custom",
        objective={"readout": "auc"},
        budget={"rounds": 1, "batch": 1},
        interventions=(
            Variable(name="dose", lower=1.0, upper=100.0, scale="log"),
            Variable(name="n", kind="integer", lower=1, upper=5),
            COCKTAIL,
        ),
        series=({"name": "x", "unit": "uM"},),
        readouts=({"name": "auc", "series": "x", "stat": "auc"}, {"name": "peak", "series": "x", "stat": "max"}, {"name": "tox"}),
    )
    return CampaignSpec.model_validate({**base, **extra})


def test_set_variables_encode_decode_and_refuse_what_breaks_them() -> None:
    value = {"Pu1": "oe", "Gata1": "ko"}
    assert COCKTAIL.width == 6 and COCKTAIL.decode(COCKTAIL.encode(value)) == {"Gata1": "ko", "Pu1": "oe"}
    assert COCKTAIL.violation(value) is None and COCKTAIL.violation({}) is None
    assert "must choose between 0 and 2" in COCKTAIL.violation({"Gata1": "ko", "Pu1": "ko", "Cebpa": "ko"})
    assert "not among its items" in COCKTAIL.violation({"Fli1": "ko"})
    assert "levels in ['Gata1=up']" in COCKTAIL.violation({"Gata1": "up"})
    assert COCKTAIL.describe(value) == "Gata1 ko + Pu1 oe"
    with pytest.raises(ValueError, match="max_items"):
        Variable(name="c", kind="set", items=("A",), max_items=2)


def test_integer_variables_round_and_refuse_fractions_and_booleans() -> None:
    n = Variable(name="n", kind="integer", lower=1, upper=5)
    assert n.from_unit(0.6) == 3.0 and n.violation(2.5) == "n = 2.5 must be a whole number"
    assert n.violation(True) == "n must be a number, got True" and n.violation(float("nan")).startswith("n must be a finite")
    cont = Variable(name="c", lower=3.0, upper=50.0, scale="log")
    assert cont.from_unit(1.0) <= 50.0 and cont.violation(cont.from_unit(1.0)) is None  # rounding never crosses a bound


def test_intervention_keys_are_stable_under_set_order() -> None:
    a = Intervention(values={"cocktail": {"Gata1": "ko", "Pu1": "oe"}, "dose": 2.0})
    b = Intervention(values={"dose": 2.0, "cocktail": {"Pu1": "oe", "Gata1": "ko"}})
    assert a.key() == b.key()


def test_readouts_are_computed_from_series_and_safety_events_from_either_side() -> None:
    s = spec(
        safety=(
            {"name": "hot", "series": "x", "above": 5.0, "max_probability": 0.1},
            {"name": "tox", "readout": "tox", "above": 0.3, "max_probability": 0.1},
        )
    )
    traj = Trajectory(times_min=(0.0, 10.0, 20.0), series={"x": (0.0, 6.0, 2.0)})
    obs = Observation(experiment_key="k", status="ok", trajectory=traj, readouts={"tox": 0.1})
    got = computed_readouts(s, obs)
    assert got["auc"] == pytest.approx((0 + 6) / 2 * 10 + (6 + 2) / 2 * 10) and got["peak"] == 6.0
    assert got[unsafe_readout_name(s.safety[0])] == 1.0 and unsafe_readout_name(s.safety[0]) == "above_5_x"
    assert observed_unsafe(s, obs.model_copy(update={"readouts": {**got, "tox": 0.1}}))
    safe_traj = Observation(experiment_key="k", status="ok", readouts={"tox": 0.5, unsafe_readout_name(s.safety[0]): 0.0})
    assert observed_unsafe(s, safe_traj)  # the readout limit alone


def test_readout_value_statistics_match_numpy() -> None:
    from wetloop.campaign import readout_value

    t, v = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 5.0])
    assert readout_value(Readout(name="a", series="x", stat="time_in_range", low=2, high=3), t, v) == 0.5
    assert readout_value(Readout(name="a", series="x", stat="time_above", threshold=2.5), t, v) == 0.5
    assert readout_value(Readout(name="a", series="x", stat="final"), t, v) == 5.0
    assert readout_value(Readout(name="a", series="x", stat="auc"), t, v) == pytest.approx(np.trapezoid(v, t))


def test_bad_readouts_limits_and_costs_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="time_in_range needs finite low < high"):
        Readout(name="r", series="x", stat="time_in_range", low=5, high=1)
    with pytest.raises(ValueError, match="give a series with a statistic"):
        Readout(name="r", stat="max")
    with pytest.raises(ValueError, match="exactly one of series or readout"):
        SafetyLimit(name="l", series="x", readout="r", below=1, max_probability=0.1)
    with pytest.raises(ValueError, match="must be less than above"):
        SafetyLimit(name="l", series="x", below=5, above=1, max_probability=0.1)
    with pytest.raises(ValueError, match="below\n  Input should be a finite number"):
        SafetyLimit(name="l", series="x", below=float("inf"), max_probability=0.1)
    with pytest.raises(ValueError, match="cost.per_item: 'dose' is not a set variable"):
        spec(cost={"per_item": {"dose": 1.0}})


def test_cost_is_per_candidate() -> None:
    s = spec(cost={"per_experiment": 2.0, "per_unit": {"dose": 0.5}, "per_item": {"cocktail": 3.0}})
    x = Intervention(values={"dose": 4.0, "n": 1.0, "cocktail": {"Gata1": "ko", "Pu1": "oe"}})
    assert x.cost(s) == 2.0 + 0.5 * 4.0 + 3.0 * 2


def test_the_registry_names_every_world_and_refuses_an_unknown_one() -> None:
    assert {"simglucose", "crispr_screen", "custom", "sbml"} <= set(world_names())
    with pytest.raises(SpecError, match="known worlds: .*custom"):
        get_world("no_such_world")


def test_a_world_lists_every_problem_of_a_spec() -> None:
    bad = spec(
        objective={"readout": "nope"},
        world_options={"functoin": "x:y"},
        safety=({"name": "z", "series": "zz", "below": 1.0, "max_probability": 0.1},),
    )
    problems = "\n".join(get_world("custom").check_spec(bad))
    assert "objective.readout: 'nope'" in problems and "functoin" in problems and "watches series 'zz'" in problems
