from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wetloop.campaign import (
    Decision,
    Experiment,
    Intervention,
    InterventionError,
    Observation,
    SpecError,
    Trajectory,
    computed_readouts,
    default_spec_path,
    get_world,
    load_spec,
)
from wetloop.worlds.simglucose import dosing_schedule, glucose_readouts


@pytest.fixture()
def spec():
    return load_spec(default_spec_path())


def test_default_spec_loads(spec) -> None:
    assert spec.world == "simglucose"
    assert spec.world_options["patient"] == "adolescent#003"
    assert spec.budget.rounds == 6 and spec.budget.batch == 4
    assert spec.variable_names == ("basal", "carb_ratio")
    assert spec.safety[0].below == 54 and spec.safety[0].max_probability == 0.05


def test_spec_errors_name_the_field(tmp_path: Path, spec) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.model_dump_json().replace('"upper":3.0', '"upper":0.01'))
    with pytest.raises(SpecError, match=r"interventions\.0.*lower \(0\.05\) must be below upper"):
        load_spec(bad)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(tmp_path / "list.yaml")


def test_log_scale_round_trip(spec) -> None:
    v = spec.variable("basal")
    assert v.to_unit(v.lower) == pytest.approx(0.0) and v.to_unit(v.upper) == pytest.approx(1.0)
    assert v.from_unit(v.to_unit(0.65)) == pytest.approx(0.65)
    # log scale: the geometric mean of the bounds sits in the middle
    assert v.to_unit(np.sqrt(v.lower * v.upper)) == pytest.approx(0.5)


def test_intervention_violations_and_key(spec) -> None:
    x = Intervention(values={"basal": 5.0, "carb_ratio": 20.0})
    assert x.violations(spec) == ["basal = 5 U/h is outside the hard limits [0.05, 3]"]
    with pytest.raises(InterventionError) as err:
        x.check(spec)
    assert err.value.intervention is x
    assert Intervention(values={"basal": 0.5}).violations(spec) == ["missing variable(s) ['carb_ratio']"]
    same = Intervention(values={"carb_ratio": 20.0, "basal": 5.0000000001})
    assert same.key() == x.key()
    with pytest.raises(ValueError, match="finite"):
        Intervention(values={"basal": float("nan"), "carb_ratio": 1.0})


def test_experiment_key_is_stable_and_distinct(spec) -> None:
    x = Intervention(values={"basal": 0.5, "carb_ratio": 20.0})
    a = Experiment(campaign_id="c", round=1, intervention=x, approved_by="p")
    b = Experiment(campaign_id="c", round=3, intervention=x, approved_by="q")
    c = Experiment(campaign_id="other", round=1, intervention=x, approved_by="p")
    assert a.key == b.key and a.key != c.key


def test_dosing_schedule_totals(spec) -> None:
    x = Intervention(values={"basal": 0.6, "carb_ratio": 20.0})
    d = dosing_schedule(spec, x, step_min=15)
    assert len(d.times_min) == 96
    assert d.carbs_g.sum() == pytest.approx(195.0)
    assert d.insulin_u.sum() == pytest.approx(0.6 * 24 + 195.0 / 20.0)
    assert d.carbs_g[7 * 4] == 45.0 and d.insulin_u[7 * 4] == pytest.approx(0.6 / 4 + 45 / 20)


def test_glucose_readouts(spec) -> None:
    r = glucose_readouts(np.array([50.0, 100.0, 180.0, 200.0]), spec)
    assert r["time_in_range"] == 0.5 and r["min_glucose"] == 50.0 and r["below_54_glucose"] == 1.0
    assert glucose_readouts(np.array([60.0, 100.0]), spec)["below_54_glucose"] == 0.0


def test_glucose_readouts_are_the_world_readouts_computed_generically(spec) -> None:
    """The simglucose lab's readouts equal the world's declared readouts, computed by `computed_readouts`
    (what `SimulatedLab` reports for a returned trajectory), to the last bit."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = rng.uniform(30.0, 300.0, size=int(rng.integers(2, 200)))
        traj = Trajectory(times_min=tuple(3.0 * np.arange(len(g))), series={"glucose": tuple(g)})
        obs = Observation(experiment_key="k", status="ok", trajectory=traj)
        assert computed_readouts(spec, obs, get_world("simglucose").readouts(spec)) == glucose_readouts(g, spec)


def test_records_validate() -> None:
    with pytest.raises(ValueError, match="every series must have 2 points"):
        Trajectory(times_min=(0, 3), series={"glucose": (1.0,)})
    with pytest.raises(ValueError, match="must carry a trajectory or readouts"):
        Observation(experiment_key="k", status="ok")
    with pytest.raises(ValueError, match="needs a reason"):
        Decision(proposal_key="k", action="reject", by="me")
    with pytest.raises(ValueError, match="edited intervention"):
        Decision(proposal_key="k", action="edit", by="me")


def test_categorical_variables_take_names() -> None:
    from wetloop.campaign import CampaignSpec, Variable

    gene = Variable(name="gene", kind="categorical")
    with pytest.raises(ValueError, match="categorical variable has no lower"):
        Variable(name="gene", kind="categorical", lower=0.0)
    with pytest.raises(ValueError, match="needs lower and upper"):
        Variable(name="dose", unit="uM")
    with pytest.raises(TypeError, match="no numeric scale"):
        gene.to_unit(0.5)
    spec = CampaignSpec(
        name="s",
        question="q",
        world="screen",
        objective={"readout": "score"},
        interventions=(gene,),
        budget={"rounds": 1, "batch": 1},
    )
    assert Intervention(values={"gene": "STAT1"}).violations(spec) == []
    assert Intervention(values={"gene": 3.0}).violations(spec) == ["gene must be a name, got 3.0"]
    assert Intervention(values={"gene": "STAT1"}).describe(spec) == "gene=STAT1"
    picky = Variable(name="gene", kind="categorical", choices=("A", "B"))
    assert picky.violation("C") == "gene = 'C' is not one of the allowed choices ['A', 'B']"


def test_observed_safety_one_definition(spec) -> None:
    from wetloop.campaign import observed_safe, observed_unsafe, safety_events

    flagged = Observation(experiment_key="k", status="ok", readouts={"time_in_range": 0.5, "below_54_glucose": 1.0})
    clean = Observation(experiment_key="k", status="ok", readouts={"time_in_range": 0.5, "below_54_glucose": 0.0})
    low_day = Trajectory(times_min=(0, 3), series={"glucose": (80.0, 50.0)})
    from_trajectory = Observation(experiment_key="k", status="ok", trajectory=low_day)
    unknown = Observation(experiment_key="k", status="ok", readouts={"time_in_range": 0.5})
    failed = Observation(experiment_key="k", status="failed", message="lab broke")
    assert [safety_events(spec, o) for o in (flagged, clean, from_trajectory, unknown)] == [[True], [False], [True], [None]]
    assert (observed_unsafe(spec, flagged), observed_safe(spec, flagged)) == (True, False)
    assert (observed_unsafe(spec, clean), observed_safe(spec, clean)) == (False, True)
    assert observed_unsafe(spec, from_trajectory)
    # a result whose safety the lab did not report is neither shown unsafe nor shown safe
    assert (observed_unsafe(spec, unknown), observed_safe(spec, unknown)) == (False, False)
    assert (observed_unsafe(spec, failed), observed_safe(spec, failed)) == (False, False)


def test_result_problem_is_the_one_plausibility_rule() -> None:
    from wetloop.campaign import Observation, Trajectory, default_spec_path, load_spec, result_problem

    spec = load_spec(default_spec_path())
    day = Trajectory(times_min=(0.0, 3.0), series={"glucose": (120.0, 118.0)}, units={"glucose": "mg/dL"})
    ok = Observation(experiment_key="k", status="ok", readouts={"time_in_range": 0.9}, trajectory=day)
    assert result_problem("k", ok, spec) is None
    assert "experiment 'k'" in result_problem("other", ok, spec)
    assert "finite 'time_in_range'" in result_problem("k", ok.model_copy(update={"readouts": {}}), spec)
    below = day.model_copy(update={"series": {"glucose": (120.0, -5.0)}})
    assert result_problem("k", ok.model_copy(update={"trajectory": below}), spec) == "negative concentrations in ['glucose']"
    assert result_problem("k", Observation(experiment_key="k", status="failed", message="x"), spec) is None
