"""SimglucoseLab on short days (3 h, ~2 s of simulator each): the real simulator, no fakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    Observation,
    Ticket,
    default_spec_path,
    load_spec,
)
from wetloop.lab_adapters import ExperimentRejected, WorldOptionError, wait_for
from wetloop.worlds.simglucose import SimglucoseLab, day_options, dosing_schedule, glucose_readouts, patient_names, reference_day
from wetloop.worlds.simglucose._options import day_key

REPO = Path(__file__).resolve().parents[2]
# 3 hours with two meals at minutes that are not on the 3-min grid (61.8 and 150 min)
SHORT = load_spec(default_spec_path()).with_overrides(
    world_options={
        **load_spec(default_spec_path()).world_options,
        "hours": 3,
        "meals": [[1.03, 40.0], [2.5, 20.0]],
    }
)
# the pump rounds basal and bolus rates (U/min) to 0.05 pmol/min: at most half an increment each, per minute
PUMP_TOL_PER_STEP_U = 2 * 3 * 0.025 / 6000


def experiment(basal: float, carb_ratio: float, campaign: str = "c1") -> Experiment:
    x = Intervention(values={"basal": basal, "carb_ratio": carb_ratio})
    return Experiment(campaign_id=campaign, round=0, intervention=x, approved_by="test")


@dataclass
class Batch:
    cache_dir: Path
    experiments: list[Experiment]
    tickets: list[Ticket]
    duplicate_tickets: list[Ticket]
    observations: list[Observation]
    runs: dict[str, int]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """One batch of two days, each submitted twice, on two workers; shared by the tests below."""
    cache_dir = tmp_path_factory.mktemp("simglucose-cache")
    exps = [experiment(0.6, 20.0), experiment(1.0, 12.0)]
    with SimglucoseLab(SHORT, cache_dir=cache_dir, workers=2) as lab:
        tickets = [lab.submit(e) for e in exps]
        duplicates = [lab.submit(e) for e in exps]
        observations = wait_for(lab, tickets, timeout_s=120)
        runs = lab.completed_runs()
    return Batch(cache_dir, exps, tickets, duplicates, observations, runs)


def test_days_come_back_ok_on_the_3_min_grid_with_units(batch: Batch) -> None:
    for obs in batch.observations:
        assert obs.status == "ok", obs.message
        traj = obs.trajectory
        assert traj.times_min == tuple(float(t) for t in range(0, 3 * 60 + 1, 3))  # 61 points
        assert set(traj.series) == {"glucose", "cgm", "insulin", "carbs"}
        assert traj.units == {"glucose": "mg/dL", "cgm": "mg/dL", "insulin": "U", "carbs": "g"}
        assert traj.series["insulin"][-1] == 0.0 and traj.series["carbs"][-1] == 0.0
        assert 39.0 <= min(traj.series["cgm"]) and 20.0 < min(traj.series["glucose"]) < 400.0
        assert obs.raw["patient"] == "adolescent#003" and obs.raw["simulator"] == "simglucose 0.2.11"
        assert obs.raw["wall_s"] > 0


def test_readouts_are_the_campaign_readouts_of_the_glucose(batch: Batch) -> None:
    for obs in batch.observations:
        assert obs.readouts == glucose_readouts(np.asarray(obs.trajectory.series["glucose"]), SHORT)
    # different regimens give different days
    assert batch.observations[0].readouts != batch.observations[1].readouts


def test_insulin_and_carbs_are_the_dosing_schedule(batch: Batch) -> None:
    for exp, obs in zip(batch.experiments, batch.observations):
        schedule = dosing_schedule(SHORT, exp.intervention, step_min=3)
        insulin = np.asarray(obs.trajectory.series["insulin"][:-1])
        carbs = np.asarray(obs.trajectory.series["carbs"][:-1])
        assert np.abs(insulin - schedule.insulin_u).max() <= PUMP_TOL_PER_STEP_U + 1e-12
        assert abs(insulin.sum() - schedule.insulin_u.sum()) <= len(insulin) * PUMP_TOL_PER_STEP_U
        np.testing.assert_allclose(carbs, schedule.carbs_g, atol=1e-9)
        assert carbs[20] == pytest.approx(40.0) and carbs[50] == pytest.approx(20.0)  # the steps holding the meals


def test_batch_ran_in_parallel_and_each_day_once(batch: Batch) -> None:
    assert batch.duplicate_tickets == batch.tickets
    assert batch.runs == {e.key: 1 for e in batch.experiments}
    a, b = (o.raw for o in batch.observations)
    assert a["pid"] != b["pid"]
    assert max(a["started_at"], b["started_at"]) < min(a["finished_at"], b["finished_at"]), "the days did not overlap"


def test_a_new_instance_answers_from_the_cache_without_simulating(batch: Batch) -> None:
    with SimglucoseLab(SHORT, cache_dir=batch.cache_dir, workers=1) as lab:
        tickets = [lab.submit(e) for e in batch.experiments]
        same_day_other_campaign = lab.submit(experiment(0.6, 20.0, campaign="c2"))
        first_polls = [lab.poll(t) for t in [*tickets, same_day_other_campaign]]
        assert tickets == batch.tickets
        assert all(o is not None and o.raw["cache"] == "hit" for o in first_polls)
        assert first_polls[0].trajectory == batch.observations[0].trajectory == first_polls[2].trajectory
        assert lab.completed_runs() == batch.runs  # nothing simulated


def test_cancel_drops_the_journal_entry(batch: Batch) -> None:
    with SimglucoseLab(SHORT, cache_dir=batch.cache_dir) as lab:
        exp = experiment(0.6, 20.0, campaign="to-cancel")
        ticket = lab.submit(exp)
        assert exp.key in lab.journal_keys()
        lab.cancel(ticket)
        assert lab.poll(ticket).status == "cancelled" and exp.key not in lab.journal_keys()


def test_out_of_bounds_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    with SimglucoseLab(SHORT, cache_dir=tmp_path) as lab:
        with pytest.raises(ExperimentRejected, match="basal"):
            lab.submit(experiment(4.0, 20.0))
        assert lab.journal_keys() == set() and lab.completed_runs() == {}
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_bad_world_options_name_the_option_and_the_choices(tmp_path: Path) -> None:
    def spec_with(**options: object) -> CampaignSpec:
        return SHORT.with_overrides(world_options={**SHORT.world_options, **options})

    with pytest.raises(WorldOptionError) as info:
        SimglucoseLab(spec_with(patient="adolescent#999"), cache_dir=tmp_path)
    assert info.value.option == "patient" and "adolescent#003" in str(info.value) and "child#010" in str(info.value)
    assert len(patient_names()) == 30
    with pytest.raises(WorldOptionError, match="meals"):
        SimglucoseLab(spec_with(meals=[]), cache_dir=tmp_path)
    with pytest.raises(WorldOptionError, match="sensor.*Dexcom"):
        SimglucoseLab(spec_with(sensor="GuardianRT"), cache_dir=tmp_path)
    with pytest.raises(WorldOptionError, match="hours"):
        SimglucoseLab(spec_with(hours=0.01), cache_dir=tmp_path)


def test_day_identity_covers_the_seed_but_not_the_scoring_range() -> None:
    x = Intervention(values={"basal": 0.6, "carb_ratio": 20.0})
    options = day_options(SHORT)
    rescored = day_options(SHORT.with_overrides(world_options={**SHORT.world_options, "glucose_range": [80, 160]}))
    assert day_key(options, x, 0, "regimen") == day_key(rescored, x, 0, "regimen")
    assert day_key(options, x, 0, "regimen") != day_key(options, x, 1, "regimen")


CRASHING_PARENT = """
import sys, time
from wetloop.campaign import CampaignSpec, Experiment
from wetloop.worlds.simglucose import SimglucoseLab
if __name__ == "__main__":
    spec = CampaignSpec.model_validate_json(open(sys.argv[1]).read())
    exp = Experiment.model_validate_json(open(sys.argv[2]).read())
    lab = SimglucoseLab(spec, cache_dir=sys.argv[3], workers=1)
    print(lab.submit(exp).model_dump_json(), flush=True)
    time.sleep(300)
"""


def test_a_new_instance_finishes_the_ticket_of_a_killed_parent(tmp_path: Path) -> None:
    exp = experiment(0.8, 18.0, campaign="crash")
    (tmp_path / "spec.json").write_text(SHORT.model_dump_json())
    (tmp_path / "exp.json").write_text(exp.model_dump_json())
    args = [sys.executable, "-c", CRASHING_PARENT, *(str(tmp_path / f) for f in ("spec.json", "exp.json", "cache"))]
    parent = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        ticket = Ticket.model_validate_json(parent.stdout.readline())
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    with SimglucoseLab(SHORT, cache_dir=tmp_path / "cache", workers=1) as lab:
        assert lab.journal_keys() == {exp.key} and lab.completed_runs() == {}  # accepted, never finished
        assert lab.poll(ticket) is None  # restarted
        obs = wait_for(lab, [ticket], timeout_s=120)[0]
        assert obs.status == "ok" and obs.experiment_key == exp.key
        assert lab.completed_runs() == {exp.key: 1}


def test_reference_day_runs_simglucose_own_controller(tmp_path: Path) -> None:
    tic = time.perf_counter()
    obs = reference_day(SHORT, cache_dir=tmp_path)
    assert obs.status == "ok" and len(obs.trajectory.times_min) == 61 and obs.raw["controller"] == "reference"
    assert obs.readouts == glucose_readouts(np.asarray(obs.trajectory.series["glucose"]), SHORT)
    assert obs.raw["reference"]["carb_ratio"] == 23.0  # adolescent#003's CR in simglucose's Quest.csv
    insulin = np.asarray(obs.trajectory.series["insulin"])
    basal_u = obs.raw["reference"]["basal_u_per_h"] / 20  # per 3-min step
    # BBController is told the announced meal in the step that holds it (minute 61.8: step 20), like the regimen
    assert insulin[19] == pytest.approx(basal_u, abs=PUMP_TOL_PER_STEP_U) and insulin[20] > 40.0 / 23.0
    first_s = time.perf_counter() - tic
    again = reference_day(SHORT, cache_dir=tmp_path)
    assert again.raw["cache"] == "hit" and again.trajectory == obs.trajectory and first_s > 0
