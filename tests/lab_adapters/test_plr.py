"""PlateLab on PyLabRobot's simulated liquid handler and a simulated plate reader (pylabrobot 0.2).

The protocol tests read their wells from SimulatedLab worlds (fast, deterministic); the end-to-end
campaign reads them from real simglucose days (4 hours). PyLabRobot raises every tip and volume
error itself; the tests check that each comes back as a TipError / VolumeError naming its experiment.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pylabrobot", reason='the PyLabRobot adapter needs its extra: pip install "wetloop[pylabrobot]"')

from pylabrobot.resources.errors import HasTipError, NoTipError, TooLittleLiquidError, TooLittleVolumeError  # noqa: E402

from tests.agent.conftest import FAST_WORLD  # noqa: E402
from tests.agent.test_crash_resume import short_spec  # noqa: E402
from wetloop.agent import Campaign  # noqa: E402
from wetloop.campaign import CampaignStore, Experiment, Intervention, LabRef, Observation, default_spec_path, load_spec  # noqa: E402
from wetloop.lab_adapters import ExperimentRejected, LabError, SimulatedLab, TipError, VolumeError, make_lab, wait_for  # noqa: E402
from wetloop.lab_adapters.plr import PlateLab  # noqa: E402

SPEC = load_spec(default_spec_path())
DOSES = [(0.1, 10.0), (0.5, 20.0), (2.0, 40.0)]


def experiment(basal: float, carb_ratio: float) -> Experiment:
    x = Intervention(values={"basal": basal, "carb_ratio": carb_ratio})
    return Experiment(campaign_id="c-plate", round=1, intervention=x, approved_by="test")


def readout_world() -> SimulatedLab:
    """Each well's objective readout is a function of its own dose, so a mixed-up layout shows."""
    return SimulatedLab(SPEC, lambda x: {"time_in_range": x.values["basal"] / 3.0, "min_glucose": 100.0 * x.values["carb_ratio"]})


def run_plate(**options) -> tuple[PlateLab, list[Experiment], list[Observation]]:
    lab = PlateLab(SPEC, world=readout_world(), **options)
    experiments = [experiment(b, c) for b, c in DOSES]
    observations = wait_for(lab, [lab.submit(e) for e in experiments], timeout_s=30)
    return lab, experiments, observations


def commands(lab: PlateLab) -> list[str]:
    return [name for name, _ in lab.deck.backend.commands]


def test_each_well_is_dosed_by_the_liquid_handler_and_reads_its_own_experiment() -> None:
    lab, experiments, observations = run_plate()
    try:
        assert [o.raw["well"] for o in observations] == ["A1", "B1", "C1"]
        for (basal, carb_ratio), obs in zip(DOSES, observations):
            assert obs.status == "ok"
            assert obs.readouts["time_in_range"] == pytest.approx(basal / 3.0)  # what the reader read
            assert obs.raw["reader"]["value"] == pytest.approx(basal / 3.0)
            assert obs.readouts["min_glucose"] == pytest.approx(100.0 * carb_ratio)  # the world's other readouts
            volumes = obs.raw["volumes_ul"]
            assert volumes["basal"] == pytest.approx(basal / 3.0 * 100.0) and volumes["carb_ratio"] == pytest.approx(
                carb_ratio / 50.0 * 100.0
            )
            assert sum(volumes.values()) == pytest.approx(250.0)
        # the real PyLabRobot calls reached the (simulated) backend: 3 wells x 3 reagents, one tip each
        assert [commands(lab).count(c) for c in ("pick_up_tips", "aspirate", "dispense", "drop_tips")] == [9, 9, 9, 9]
        plate = lab.deck.reader.get_plate()
        assert [plate.get_well(w).tracker.get_used_volume() for w in ("A1", "B1", "C1", "D1")] == pytest.approx(
            [250.0] * 3 + [0.0]
        )
        used = sum(o.raw["volumes_ul"]["diluent"] for o in observations)
        assert lab.deck.troughs["diluent"].tracker.get_used_volume() == pytest.approx(50_000.0 - used)
        assert lab.deck.tips_loaded == 288 - 9
    finally:
        lab.close()


def test_submission_is_idempotent_and_every_plate_is_a_new_plate() -> None:
    world = readout_world()
    with PlateLab(SPEC, world=world) as lab:
        e = experiment(0.5, 20.0)
        ticket = lab.submit(e)
        assert lab.submit(e) == ticket
        [obs] = wait_for(lab, [ticket], timeout_s=30)
        assert lab.submit(e) == ticket and lab.poll(ticket) == obs
        later = experiment(1.0, 20.0)
        [second] = wait_for(lab, [lab.submit(later)], timeout_s=30)
        assert (obs.raw["plate"], obs.raw["well"]) == ("plate_1", "A1")
        assert (second.raw["plate"], second.raw["well"]) == ("plate_2", "A1")
        assert world.runs == {e.key: 1, later.key: 1}
        assert commands(lab).count("aspirate") == 6


def test_hard_limits_are_checked_before_the_deck_moves() -> None:
    world = readout_world()
    with PlateLab(SPEC, world=world) as lab:
        with pytest.raises(ExperimentRejected, match="basal"):
            lab.submit(experiment(9.0, 20.0))
        assert commands(lab) == ["setup"] and world.runs == {}


def test_running_out_of_tips_fails_the_experiment_at_fault_and_names_it() -> None:
    lab, experiments, observations = run_plate(tips=4)  # 3 tips per well: the second well runs dry
    try:
        assert [o.status for o in observations] == ["ok", "failed", "failed"]
        error = lab.errors[experiments[1].key]
        assert isinstance(error, TipError) and isinstance(error.cause, NoTipError)
        assert (error.experiment_key, error.well, error.step) == (experiments[1].key, "B1", "pick up tip")
        assert experiments[1].key in observations[1].message and "tips" in observations[1].message
        assert observations[1].raw["error"] == "TipError" and observations[1].raw["cause"].startswith("NoTipError")
    finally:
        lab.close()


def test_a_tip_already_on_the_head_fails_that_experiment_and_is_cleared_for_the_next() -> None:
    with PlateLab(SPEC, world=readout_world()) as lab:
        spot = lab.deck.tip_racks[-1].get_item("H12")  # a tip someone left on channel 0
        lab.deck.lh.head[0].add_tip(spot.get_tip(), origin=spot, commit=True)
        experiments = [experiment(b, c) for b, c in DOSES[:2]]
        observations = wait_for(lab, [lab.submit(e) for e in experiments], timeout_s=30)
        assert [o.status for o in observations] == ["failed", "ok"]
        error = lab.errors[experiments[0].key]
        assert isinstance(error, TipError) and isinstance(error.cause, HasTipError)
        assert (error.well, error.step) == ("A1", "pick up tip")
        assert not lab.deck.lh.head[0].has_tip


@pytest.mark.parametrize(
    "options, step, cause, well",
    [
        ({"total_volume_ul": 400.0}, "dispense", TooLittleVolumeError, "A1"),  # more than a 360 µL well holds
        ({"tip_volume_ul": 50}, "aspirate", TooLittleVolumeError, "A1"),  # more than a 50 µL tip holds
        ({"stock_volume_ul": 300.0}, "aspirate", TooLittleLiquidError, "B1"),  # the diluent trough runs dry
    ],
    ids=["well-overflow", "tip-capacity", "stock-dry"],
)
def test_volume_errors_name_the_experiment_the_well_and_the_step(options, step, cause, well) -> None:
    lab, experiments, observations = run_plate(**options)
    try:
        failed = [e for e, o in zip(experiments, observations) if o.status == "failed"]
        assert failed, [o.status for o in observations]
        error = lab.errors[failed[0].key]
        assert isinstance(error, VolumeError) and isinstance(error.cause, cause)
        assert (error.experiment_key, error.well, error.step) == (failed[0].key, well, step)
        assert failed[0].key in str(error) and "µL" in str(error)
    finally:
        lab.close()


def test_cancel_before_the_plate_runs_keeps_it_off_the_plate() -> None:
    world = readout_world()
    with PlateLab(SPEC, world=world) as lab:
        ticket = lab.submit(experiment(0.5, 20.0))
        lab.cancel(ticket)
        assert lab.poll(ticket).status == "cancelled"
        assert commands(lab) == ["setup"] and world.runs == {}


def test_cancel_during_a_plate_drops_its_result_and_a_resubmission_goes_on_the_next_plate() -> None:
    def slow(x):
        time.sleep(0.5)
        return {"time_in_range": x.values["basal"] / 3.0}

    with PlateLab(SPEC, world=SimulatedLab(SPEC, slow)) as lab:
        e = experiment(0.5, 20.0)
        ticket = lab.submit(e)
        assert lab.poll(ticket) is None  # plate_1 starts: its world takes 0.5 s
        lab.cancel(ticket)
        assert lab.poll(ticket).status == "cancelled"
        [obs] = wait_for(lab, [lab.submit(e)], timeout_s=30)
        assert obs.status == "ok" and obs.raw["plate"] == "plate_2"


def test_a_new_instance_answers_old_tickets_from_its_store_and_runs_journaled_ones(tmp_path) -> None:
    world = readout_world()
    done, pending = experiment(0.5, 20.0), experiment(1.0, 30.0)
    with PlateLab(SPEC, world=world, cache_dir=tmp_path) as lab:
        [first] = wait_for(lab, [ticket := lab.submit(done)], timeout_s=30)
        late = lab.submit(pending)  # accepted, never polled: no plate ran it
    with PlateLab(SPEC, world=world, cache_dir=tmp_path) as lab:
        assert lab.poll(ticket) == first
        [obs] = wait_for(lab, [late], timeout_s=30)
        assert obs.status == "ok"
    assert world.runs == {done.key: 1, pending.key: 1}


def test_options_and_specs_the_deck_cannot_dose_are_refused_with_what_to_change() -> None:
    with pytest.raises(LabError, match="tip_volume_ul"):
        PlateLab(SPEC, world=readout_world(), tip_volume_ul=7)
    with pytest.raises(LabError, match="Valid options"):
        PlateLab(SPEC, world=readout_world(), pipette="fast")
    with pytest.raises(LabError, match="total_volume_ul"):
        PlateLab(SPEC, world=readout_world(), total_volume_ul=150.0)


# -- a whole campaign on plates ------------------------------------------------------------------
def test_a_short_campaign_runs_end_to_end_on_plates(tmp_path, monkeypatch) -> None:
    from rich.console import Console

    monkeypatch.setenv("WETLOOP_LAB_WORKERS", "2")
    spec = load_spec(short_spec(tmp_path, rounds=2, batch=2)).with_overrides(
        lab=LabRef(adapter="pylabrobot", options={"tips": 288})
    )
    with make_lab(spec, cache_dir=tmp_path / "probe") as probe:
        assert isinstance(probe, PlateLab)
    with Campaign.create(spec, tmp_path / "run", world_config=FAST_WORLD, console=Console(stderr=True, quiet=True)) as campaign:
        assert campaign.run().done
    with CampaignStore(tmp_path / "run" / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        keys = sorted(e.key for e in store.experiments(cid))
        assert len(keys) == 4 == len(set(keys))
        assert sorted(r.key for r in store.records(cid, "submission")) == keys
        observations = [Observation.model_validate(r.payload) for r in store.records(cid, "observation")]
        assert sorted(o.experiment_key for o in observations) == keys
        assert all(o.status == "ok" and o.lab == "pylabrobot" and o.trajectory is not None for o in observations)
        assert sorted((o.raw["plate"], o.raw["well"]) for o in observations) == [
            ("plate_1", "A1"),
            ("plate_1", "B1"),
            ("plate_2", "A1"),
            ("plate_2", "B1"),
        ]
        assert all(o.readouts["time_in_range"] == o.raw["reader"]["value"] for o in observations)
