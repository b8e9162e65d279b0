"""The protocol through SimulatedLab (no simulator), the registry, and the room's import rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wetloop.campaign import (
    Experiment,
    Intervention,
    Trajectory,
    WetloopError,
    default_spec_path,
    load_spec,
)
from wetloop.lab_adapters import (
    WORLDS,
    ExperimentRejected,
    Lab,
    LabClosed,
    LabError,
    LabSettings,
    LabTimeout,
    SimulatedLab,
    UnknownTicket,
    WorldNotFound,
    make_lab,
    register_world,
    wait_for,
)
from wetloop.worlds.simglucose import SimglucoseLab, glucose_readouts

ROOM = Path(__file__).resolve().parents[2] / "wetloop" / "lab_adapters"
SPEC = load_spec(default_spec_path())


def experiment(basal: float = 0.6, carb_ratio: float = 20.0, campaign: str = "c1") -> Experiment:
    x = Intervention(values={"basal": basal, "carb_ratio": carb_ratio})
    return Experiment(campaign_id=campaign, round=0, intervention=x, approved_by="test")


def glucose_world(x: Intervention) -> Trajectory:
    """A toy patient: glucose falls with basal insulin (no simulator)."""
    level = 200.0 - 150.0 * x.values["basal"]
    glucose = tuple(level + 10.0 * np.sin(np.arange(5)))
    return Trajectory(times_min=(0.0, 3.0, 6.0, 9.0, 12.0), series={"glucose": glucose}, units={"glucose": "mg/dL"})


def test_out_of_bounds_is_rejected_with_every_reason_and_nothing_runs() -> None:
    lab = SimulatedLab(SPEC, glucose_world)
    bad = experiment(basal=5.0, carb_ratio=1.0)
    with pytest.raises(ExperimentRejected) as info:
        lab.submit(bad)
    assert info.value.experiment is bad
    assert len(info.value.reasons) == 2
    assert any("basal" in r for r in info.value.reasons) and any("carb_ratio" in r for r in info.value.reasons)
    assert isinstance(info.value, LabError) and isinstance(info.value, WetloopError)
    assert lab.runs == {}


def test_submit_is_idempotent_by_key() -> None:
    lab = SimulatedLab(SPEC, glucose_world)
    first, second = lab.submit(experiment()), lab.submit(experiment())
    other = lab.submit(experiment(basal=0.8))
    assert first == second and first != other
    assert lab.runs == {first.experiment_key: 1, other.experiment_key: 1}


def test_results_stay_pending_for_the_requested_polls() -> None:
    lab = SimulatedLab(SPEC, glucose_world, polls_until_done=2)
    ticket = lab.submit(experiment())
    assert lab.poll(ticket) is None and lab.poll(ticket) is None
    obs = lab.poll(ticket)
    assert obs is not None and obs.status == "ok" and obs.experiment_key == ticket.experiment_key


def test_glucose_trajectory_gets_the_campaign_readouts() -> None:
    lab = SimulatedLab(SPEC, glucose_world)
    obs = wait_for(lab, [lab.submit(experiment())])[0]
    expected = glucose_readouts(np.asarray(obs.trajectory.series["glucose"]), SPEC)
    assert obs.readouts == expected and "below_54_glucose" in obs.readouts


def test_dict_world_gives_readouts_and_raising_world_gives_failed() -> None:
    lab = SimulatedLab(SPEC, lambda x: {"time_in_range": x.values["basal"]})
    assert lab.poll(lab.submit(experiment(basal=0.7))).readouts == {"time_in_range": 0.7}

    def broken(x: Intervention) -> Trajectory:
        raise RuntimeError("ODE solver failed")

    lab = SimulatedLab(SPEC, broken)
    obs = lab.poll(lab.submit(experiment()))
    assert obs.status == "failed" and "RuntimeError: ODE solver failed" in obs.message


def test_closed_lab_refuses_everything_but_close() -> None:
    with SimulatedLab(SPEC, glucose_world) as lab:
        ticket = lab.submit(experiment())
    assert lab.closed
    with pytest.raises(LabClosed):
        lab.submit(experiment(basal=0.9))
    with pytest.raises(LabClosed):
        lab.poll(ticket)
    lab.close()  # twice is fine


def test_cancel_then_resubmit_runs_again() -> None:
    lab = SimulatedLab(SPEC, glucose_world, polls_until_done=5)
    ticket = lab.submit(experiment())
    lab.cancel(ticket)
    assert lab.poll(ticket).status == "cancelled"
    again = lab.submit(experiment())
    assert again == ticket and lab.runs[ticket.experiment_key] == 2 and lab.poll(again) is None


def test_tickets_of_other_labs_are_unknown() -> None:
    a, b = SimulatedLab(SPEC, glucose_world, name="a"), SimulatedLab(SPEC, glucose_world, name="b")
    ticket = a.submit(experiment())
    with pytest.raises(UnknownTicket, match="issued by lab 'a'"):
        b.poll(ticket)
    forged = ticket.model_copy(update={"experiment_key": "0" * 20})
    with pytest.raises(UnknownTicket):
        a.poll(forged)


def test_wait_for_times_out_with_the_pending_tickets() -> None:
    lab = SimulatedLab(SPEC, glucose_world, polls_until_done=10**6)
    ticket = lab.submit(experiment())
    with pytest.raises(LabTimeout) as info:
        wait_for(lab, [ticket], timeout_s=0.05, poll_s=0.01)
    assert info.value.pending == (ticket,)


def test_make_lab_picks_the_world_and_names_the_known_ones(tmp_path: Path) -> None:
    lab = make_lab(SPEC, cache_dir=tmp_path, workers=1)
    assert isinstance(lab, SimglucoseLab) and isinstance(lab, Lab) and lab.cache_dir == tmp_path
    lab.close()
    with pytest.raises(WorldNotFound) as info:
        make_lab(SPEC.with_overrides(world="crispr-screen"))
    assert "simglucose" in str(info.value) and "crispr-screen" in str(info.value)
    register_world("toy", lambda spec, **kw: SimulatedLab(spec, glucose_world, name="toy"))
    try:
        assert make_lab(SPEC.with_overrides(world="toy")).name == "toy"
    finally:
        WORLDS.pop("toy")


def test_a_misspelt_adapter_option_is_an_error_and_runner_arguments_are_not_options(tmp_path: Path) -> None:
    from wetloop.campaign import LabRef
    from wetloop.lab_adapters import LabError

    typo = SPEC.with_overrides(lab=LabRef(adapter="http", options={"base_url": "http://127.0.0.1:9", "timeot_s": 3}))
    with pytest.raises(LabError, match=r"\['timeot_s'\] are not options of the 'http' lab adapter; it takes .*timeout_s"):
        make_lab(typo, cache_dir=tmp_path, workers=1)
    ok = SPEC.with_overrides(lab=LabRef(adapter="http", options={"base_url": "http://127.0.0.1:9", "timeout_s": 3}))
    with make_lab(ok, cache_dir=tmp_path, workers=1) as lab:  # cache_dir / workers are the runner's, not passed on
        assert lab.timeout_s == 3


def test_settings_come_from_env_and_explicit_arguments_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WETLOOP_LAB_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("WETLOOP_LAB_WORKERS", "3")
    assert LabSettings().cache_dir == tmp_path / "env"
    from_env = SimglucoseLab(SPEC)
    explicit = SimglucoseLab(SPEC, cache_dir=tmp_path / "arg", workers=1)
    assert (from_env.cache_dir, from_env.workers) == (tmp_path / "env", 3)
    assert (explicit.cache_dir, explicit.workers) == (tmp_path / "arg", 1)


def test_default_cache_dir_is_shared_by_every_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WETLOOP_LAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert LabSettings().cache_dir == tmp_path / "wetloop" / "labs"


def test_room_imports_only_campaign_and_itself() -> None:
    for path in ROOM.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            bad = [
                n for n in names if n.startswith("wetloop.") and not n.startswith(("wetloop.campaign", "wetloop.lab_adapters"))
            ]
            assert not bad and "torch" not in [n.split(".")[0] for n in names], f"{path.name} imports {names}"


def test_importing_the_room_loads_neither_torch_nor_simglucose() -> None:
    code = "import sys, wetloop.lab_adapters; print('torch' in sys.modules, 'simglucose' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOM.parents[1], check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("adapter, package", [("pylabrobot", "pylabrobot"), ("sila", "sila2")])
def test_a_missing_extra_names_the_install_line(adapter: str, package: str) -> None:
    """With the adapter's package unimportable, make_lab says which extra to install (in a fresh interpreter)."""
    code = (
        f"import sys; sys.modules['{package}'] = None\n"
        "from wetloop.campaign import LabRef, default_spec_path, load_spec\n"
        "from wetloop.lab_adapters import LabError, make_lab\n"
        f"spec = load_spec(default_spec_path()).with_overrides(lab=LabRef(adapter='{adapter}'))\n"
        "try:\n    make_lab(spec)\nexcept LabError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert f'pip install "wetloop[{adapter}]"' in done.stdout, done.stderr[-2000:]
