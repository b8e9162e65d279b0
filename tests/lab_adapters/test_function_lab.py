"""FunctionLab: a scientist's own function as a lab; its disk record makes a resumed campaign run nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from wetloop.campaign import CampaignSpec, Experiment, Intervention, result_problem
from wetloop.lab_adapters import ExperimentRejected, FunctionLab, LabError, load_function, wait_for

SPEC = CampaignSpec.model_validate(
    dict(
        name="s",
        question="q",
        world="custom",
        objective={"readout": "peak"},
        budget={"rounds": 1, "batch": 2},
        interventions=({"name": "dose", "lower": 1.0, "upper": 10.0},),
        series=({"name": "x"},),
        readouts=({"name": "peak", "series": "x", "stat": "max"}, {"name": "extra"}),
        safety=({"name": "hot", "series": "x", "above": 15.0, "max_probability": 0.1},),
    )
)
CALLS: list[dict] = []


def course(values: dict, seed: int) -> dict:
    CALLS.append({"values": values, "seed": seed})
    d = values["dose"]
    return {"times_min": [0, 10, 20], "series": {"x": [0.0, 2 * d, d]}, "readouts": {"extra": seed % 7}}


def exp(dose: float) -> Experiment:
    return Experiment(campaign_id="c", round=1, intervention=Intervention(values={"dose": dose}), approved_by="t")


def test_a_time_course_gets_the_spec_readouts_and_each_key_its_own_seed(tmp_path: Path) -> None:
    CALLS.clear()
    with FunctionLab(SPEC, course, cache_dir=tmp_path) as lab:
        a, b = wait_for(lab, [lab.submit(exp(2.0)), lab.submit(exp(9.0))])
    assert a.readouts["peak"] == 4.0 and a.readouts["above_15_x"] == 0.0 and b.readouts["above_15_x"] == 1.0
    assert result_problem(a.experiment_key, a, SPEC) is None
    assert CALLS[0]["seed"] != CALLS[1]["seed"] and a.readouts["extra"] == CALLS[0]["seed"] % 7


def test_a_new_lab_on_the_same_folder_answers_without_running_again(tmp_path: Path) -> None:
    CALLS.clear()
    with FunctionLab(SPEC, course, cache_dir=tmp_path) as lab:
        ticket = lab.submit(exp(3.0))
        first = wait_for(lab, [ticket])[0]
    with FunctionLab(SPEC, course, cache_dir=tmp_path) as again:
        assert again.poll(ticket) == first and wait_for(again, [again.submit(exp(3.0))])[0] == first
        assert again.runs == {first.experiment_key: 1}
    assert len(CALLS) == 1


def test_limits_are_checked_before_the_function_runs_and_failures_are_observations(tmp_path: Path) -> None:
    CALLS.clear()
    with FunctionLab(SPEC, course) as lab:
        with pytest.raises(ExperimentRejected, match="outside the hard limits"):
            lab.submit(exp(50.0))
    assert CALLS == []

    def broken(values: dict) -> list:
        return [1, 2]

    with FunctionLab(SPEC, broken) as lab:
        obs = wait_for(lab, [lab.submit(exp(2.0))])[0]
    assert obs.status == "failed" and "must return a dict" in obs.message


def test_load_function_from_a_module_or_a_file(tmp_path: Path) -> None:
    assert load_function("wetloop.worlds.custom.examples:oral_dosing").__name__ == "oral_dosing"
    sim = tmp_path / "my_sim.py"
    sim.write_text("def run(values):\n    return {'y': values['dose'] * 2}\n")
    assert load_function(f"{sim}:run")({"dose": 2.0}) == {"y": 4.0}
    for bad, why in (
        ("nocolon", "must be 'module:name'"),
        (f"{sim}:missing", "no callable 'missing'"),
        ("no_such_module_x:f", "cannot load"),
    ):
        with pytest.raises(LabError, match=why):
            load_function(bad)
