"""The objective's ceiling: where one is known, when a campaign has reached it, and what `explore` ranks by."""

from __future__ import annotations

import pytest

from wetloop.campaign import AtCeiling, CampaignSpec, Intervention, Observation, Readout, Series, SpecError
from wetloop.planners import KnowsCeiling, Planner, objective_ceiling, reached_ceiling
from wetloop.worlds.crispr_screen._planner import ScreenPlanner

from .fakes import FakeWorld, make_spec, observed, proposal

TIR = Readout(name="time_in_range", series="glucose", stat="time_in_range", low=70.0, high=180.0)
GLUCOSE = Series(name="glucose", unit="mg/dL")


@pytest.mark.parametrize(
    "readout, series, bounds",
    [
        (TIR, GLUCOSE, (0.0, 1.0)),
        (Readout(name="above", series="glucose", stat="time_above", threshold=180.0), GLUCOSE, (0.0, 1.0)),
        (Readout(name="below", series="glucose", stat="time_below", threshold=70.0), GLUCOSE, (0.0, 1.0)),
        (Readout(name="hit", binary=True), None, (0.0, 1.0)),
        (Readout(name="peak", series="x", stat="max"), Series(name="x", lower=0.0, upper=5.0), (0.0, 5.0)),
        (Readout(name="level", series="x", stat="final"), Series(name="x", lower=None), (None, None)),
        (Readout(name="area", series="x", stat="auc"), Series(name="x"), (0.0, None)),
        (Readout(name="area", series="x", stat="auc"), Series(name="x", lower=-1.0), (None, None)),
        (Readout(name="score"), None, (None, None)),
        (Readout(name="kill", lower=0.0, upper=1.0), None, (0.0, 1.0)),
        (Readout(name="peak", series="x", stat="max", upper=2.0), Series(name="x", upper=5.0), (0.0, 2.0)),
    ],
    ids=[
        "in-range",
        "above",
        "below",
        "binary",
        "series-max",
        "unbounded-series",
        "auc",
        "auc-negative",
        "reported",
        "declared",
        "narrowed",
    ],
)
def test_readout_bounds_per_kind(readout, series, bounds) -> None:
    assert readout.bounds(series) == bounds


def test_declared_readout_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="lower .* must be below upper"):
        Readout(name="kill", lower=1.0, upper=0.0)
    with pytest.raises(ValueError, match="finite"):
        Readout(name="kill", upper=float("inf"))


def _spec(objective: dict, readouts: list[dict], **fields) -> CampaignSpec:
    return make_spec().with_overrides(objective=objective, readouts=readouts, **fields)


@pytest.mark.parametrize(
    "objective, readouts, ceiling",
    [
        ({"readout": "y"}, [{"name": "y", "lower": 0.0, "upper": 1.0}], 1.0),
        ({"readout": "y", "direction": "minimize"}, [{"name": "y", "lower": 0.0, "upper": 1.0}], 0.0),
        ({"readout": "y"}, [{"name": "y", "lower": 0.0}], None),  # no upper bound: nothing caps a maximum
        ({"readout": "y", "direction": "target", "target_value": 0.3}, [{"name": "y"}], 0.3),
        ({"readout": "y", "direction": "target", "target_value": 3.0}, [{"name": "y", "upper": 1.0}], 1.0),
        ({"readout": "tir"}, [{"name": "tir", "series": "glucose", "stat": "time_in_range", "low": 70, "high": 180}], 1.0),
        ({"readout": "hit"}, [{"name": "hit", "binary": True}], 1.0),
    ],
    ids=["max-declared", "min-declared", "max-unbounded", "target", "target-beyond-bound", "fraction", "binary"],
)
def test_the_objective_ceiling(objective, readouts, ceiling) -> None:
    assert objective_ceiling(_spec(objective, readouts)) == ceiling


def test_a_world_readout_declares_the_ceiling_of_a_spec_that_names_it_only() -> None:
    spec = make_spec()  # time_in_range is the world's readout, not declared in the spec
    assert objective_ceiling(spec) is None
    assert objective_ceiling(spec, [TIR], [GLUCOSE]) == 1.0


def test_only_a_safe_result_at_the_ceiling_reaches_it() -> None:
    spec, x, y, z = make_spec(), Intervention(values={"a": 0.5, "b": 0.1}), Intervention(values={"a": 0.6, "b": 0.1}), None
    assert reached_ceiling(spec, [observed(x, 0.99)], [TIR], [GLUCOSE]) is None
    assert reached_ceiling(spec, [observed(x, 1.0, unsafe=1.0)], [TIR], [GLUCOSE]) is None  # unsafe: not an incumbent
    failed = (y, Observation(experiment_key=y.key(), status="failed"))
    z = reached_ceiling(spec, [failed, observed(x, 0.9), observed(y, 1.0)], [TIR], [GLUCOSE])
    assert z is not None and z.intervention == y and z.best == 1.0 and z.ceiling == 1.0 and z.experiment_key == y.key()
    assert "no experiment can improve on it" in z.describe(spec)


def test_the_tolerance_says_how_close_counts() -> None:
    x = Intervention(values={"a": 0.5, "b": 0.1})
    near = make_spec().with_overrides(at_ceiling=AtCeiling(tolerance=0.02))
    assert reached_ceiling(near, [observed(x, 0.985)], [TIR], [GLUCOSE]) is not None
    assert reached_ceiling(near, [observed(x, 0.975)], [TIR], [GLUCOSE]) is None
    target = make_spec().with_overrides(
        objective={"readout": "time_in_range", "direction": "target", "target_value": 0.7}, at_ceiling={"tolerance": 0.05}
    )
    assert reached_ceiling(target, [observed(x, 0.74)], [TIR], [GLUCOSE]) is not None
    assert reached_ceiling(target, [observed(x, 0.76)], [TIR], [GLUCOSE]) is None


def test_the_default_is_stop_and_an_old_spec_without_the_field_loads() -> None:
    data = make_spec().model_dump(mode="json")
    del data["at_ceiling"]
    spec = CampaignSpec.model_validate(data)
    assert spec.at_ceiling == AtCeiling(action="stop", tolerance=0.0)
    with pytest.raises(SpecError, match="at_ceiling.action"):
        spec.with_overrides(at_ceiling={"action": "halt"})
    with pytest.raises(SpecError, match="at_ceiling.tolerance"):
        spec.with_overrides(at_ceiling={"tolerance": -0.1})


def test_the_generic_planner_knows_a_ceiling_and_a_screen_planner_does_not() -> None:
    spec = make_spec()
    assert isinstance(Planner(spec), KnowsCeiling)
    assert not isinstance(ScreenPlanner(spec), KnowsCeiling)  # a screen wants many hits: its first is no ceiling
    x = Intervention(values={"a": 0.5, "b": 0.1})
    assert Planner(spec, readouts=[TIR], series=[GLUCOSE]).ceiling([observed(x, 1.0)]) is not None
    assert Planner(spec).ceiling([observed(x, 1.0)]) is None  # the readout undeclared: no ceiling known


MENU = [proposal(0.55, 0.0), proposal(0.5, 0.1), proposal(0.45, 0.6), proposal(0.6, 0.9)]


@pytest.mark.parametrize("action", ["stop", "explore"])
def test_explore_at_the_ceiling_ranks_by_information_gain_alone(action) -> None:
    spec = make_spec(batch=2).with_overrides(at_ceiling={"action": action})
    history = [observed(Intervention(values={"a": 0.5, "b": 0.0}), 1.0)]
    ranking = Planner(spec, readouts=[TIR], series=[GLUCOSE]).rank(MENU, FakeWorld(spec), history, round=2)
    scores = [r.score for r in ranking.ranked]
    assert all(s.expected_improvement == 0.0 for s in scores)  # nothing can beat a time in range of 1.0
    if action == "explore":
        assert "IG / cost" in ranking.note and "at_ceiling.action says (explore)" in ranking.note
        assert all(s.acquisition == pytest.approx(s.info_gain / s.cost) for s in scores)
        gains = sorted((r.score.info_gain for r in ranking.ranked), reverse=True)
        assert [r.score.info_gain for r in ranking.selected] == gains[:2] and gains[0] > gains[-1]
    else:  # the planner ranks as ever; the loop, not the planner, stops the campaign
        assert "IG / cost" not in ranking.note
        assert all(s.acquisition == pytest.approx(0.01 * s.info_gain / s.cost) for s in scores)
