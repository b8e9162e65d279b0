"""Every registered world passes the same end-to-end check (gymnasium's `check_env` idea).

For each world's tiny example campaign, through the real CLI in other processes: the spec is valid
for its world; round 1 stops for review and an edit (through the CLI's edit parser) is applied; the
campaign is killed with SIGKILL in round 2 and resumed; the store then holds every experiment once,
submitted once and observed once; and the report is written. A new world passes this or does not merge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.agent.test_crash_resume import FAST_ENV as CRASH_TEST_ENV
from tests.agent.test_crash_resume import _count
from tests.screen_data import DATA
from wetloop.agent._edits import edit_text, parse_edit
from wetloop.campaign import CampaignStore, SpecError, get_world, world_names

pytestmark = pytest.mark.slow

FAST_ENV = {**CRASH_TEST_ENV, "WETLOOP_DATA_DIR": str(DATA)}


def _cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wetloop.agent.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _example(name: str):
    try:
        world = get_world(name)
    except SpecError as exc:  # an optional extra is missing on this machine
        pytest.skip(str(exc))
    os.environ.setdefault("WETLOOP_DATA_DIR", str(DATA))
    spec = world.example_spec()
    if spec is None:
        pytest.skip(f"world {name!r} cannot run its example here (data or extra missing)")
    return world, spec


def _edit_text(spec, proposal: dict) -> str:
    """An edit of the first variable that keeps its value: exercises the parser for that variable's kind."""
    var = spec.interventions[0]
    value = proposal["values"][var.name]
    if isinstance(value, dict):
        text = "+".join(f"{k}:{v}" for k, v in sorted(value.items())) or "none"
    else:
        text = value if isinstance(value, str) else repr(float(value))
    return f"1:{var.name}={text}"


def _kill_in_round_2(run_dir: Path, env: dict[str, str]) -> None:
    """Approve round 2 in another process and SIGKILL it once its first submission is stored (or it ended)."""
    before = _count(run_dir / "store.sqlite", "submission")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wetloop.agent.cli", "review", "--dir", str(run_dir), "--approve-all"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while _count(run_dir / "store.sqlite", "submission") <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "round 2 did not start in time"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:  # a fast world may have finished the round already: nothing to kill
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("name", world_names())
def test_world_conforms(name: str, tmp_path: Path) -> None:
    world, spec = _example(name)
    assert world.check_spec(spec) == [], world.check_spec(spec)
    spec = spec.with_overrides(at_ceiling={"action": "explore"})  # the audit wants the whole budget, even at a ceiling
    spec_file, run_dir = tmp_path / "spec.yaml", tmp_path / "run"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    env = {**os.environ, **FAST_ENV, "WETLOOP_LAB_CACHE_DIR": str(tmp_path / "lab-cache")}

    started = _cli("run", str(spec_file), "--dir", str(run_dir), "--review", env=env)
    assert started.returncode == 0, started.stderr[-3000:]
    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        ranking = store.records(cid, "ranking", round=1)[-1].payload
    first = next(r for r in ranking["ranked"] if r["selected"])
    values = first["proposal"]["intervention"]["values"]
    # the web page's form shows each variable as `edit_text` and posts it back through the same parser
    typed = {v.name: edit_text(values[v.name]) for v in spec.interventions}
    assert parse_edit(spec, values, typed).violations(spec) == []
    edit = _edit_text(spec, {"values": values})
    reviewed = _cli("review", "--dir", str(run_dir), "--edit", edit, "--approve-all", env=env)
    assert reviewed.returncode == 0, reviewed.stderr[-3000:]

    _kill_in_round_2(run_dir, env)
    resumed = _cli("resume", "--dir", str(run_dir), env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if "awaits review" in resumed.stderr:  # killed before round 2's decisions were stored
        resumed = _cli("review", "--dir", str(run_dir), "--approve-all", env=env)
        assert resumed.returncode == 0, resumed.stderr[-3000:]

    with CampaignStore(run_dir / "store.sqlite") as store:
        keys = [e.key for e in store.experiments(cid)]
        assert len(keys) == len(set(keys)) == spec.budget.experiments
        assert sorted(r.key for r in store.records(cid, "submission")) == sorted(keys)
        observations = store.records(cid, "observation")
        assert sorted(r.key for r in observations) == sorted(keys)
        assert all(r.payload["status"] == "ok" for r in observations), [r.payload.get("message") for r in observations]
        decisions = [
            d for r in store.records(cid, "decision") for d in (r.payload if isinstance(r.payload, list) else [r.payload])
        ]
        assert any(json.dumps(d).find('"edit"') >= 0 for d in decisions), "the edit was not recorded"
        assert store.count(cid, "model") >= 1
    report = _cli("report", "--dir", str(run_dir), env=env)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (run_dir / "report" / "report.html").read_text()
    assert spec.name in html and spec.objective.readout in html
