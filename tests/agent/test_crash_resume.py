"""kill -9 a real campaign process mid-round, resume it, and audit the store and the lab.

Real simglucose days, shortened to 4 hours (two meals) so the test takes seconds per day.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from wetloop.campaign import CampaignStore, default_spec_path
from wetloop.worlds.simglucose import SimglucoseLab

FAST_ENV = {
    "WETLOOP_WORLDMODEL_HIDDEN": "32",
    "WETLOOP_WORLDMODEL_LAYERS": "2",
    "WETLOOP_WORLDMODEL_EPOCHS": "10",
    "WETLOOP_WORLDMODEL_MIN_STEPS": "150",
    "WETLOOP_WORLDMODEL_PARTICLES": "4",
    "WETLOOP_LAB_WORKERS": "2",
}


def short_spec(tmp_path: Path, rounds: int, batch: int) -> Path:
    raw = yaml.safe_load(default_spec_path().read_text())
    raw["world_options"].update(hours=4, meals=[[1.0, 45.0], [2.5, 60.0]])
    raw["budget"] = {"rounds": rounds, "batch": batch}
    raw["at_ceiling"] = {"action": "explore"}  # a 4-hour day can reach time in range 1.0: spend the whole budget
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _count(db: Path, kind: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wetloop.agent.cli", *args]


@pytest.mark.parametrize("kind, at_least", [("submission", 3), ("observation", 3)], ids=["mid-submission", "mid-observe"])
def test_kill_9_mid_round_then_resume_loses_nothing_and_runs_nothing_twice(tmp_path, kind, at_least) -> None:
    spec_path, run_dir = short_spec(tmp_path, rounds=3, batch=2), tmp_path / "run"
    env = {**os.environ, **FAST_ENV, "WETLOOP_LAB_CACHE_DIR": str(tmp_path / "unused-cache")}
    proc = subprocess.Popen(
        _cli("run", str(spec_path), "--dir", str(run_dir)),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while _count(run_dir / "store.sqlite", kind) < at_least:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "campaign did not reach the kill point in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _count(run_dir / "store.sqlite", "observation") < 6  # it really was killed mid-campaign

    done = subprocess.run(_cli("resume", "--dir", str(run_dir)), env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]

    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        exps = store.experiments(cid)
        keys = [e.key for e in exps]
        assert len(keys) == 6 == len(set(keys))
        assert sorted(r.key for r in store.records(cid, "submission")) == sorted(keys)
        observations = store.records(cid, "observation")
        assert sorted(r.key for r in observations) == sorted(keys)
        assert all(r.payload["status"] == "ok" for r in observations)
        assert [r.round for r in store.records(cid, "ranking")] == [1, 2, 3]
    with SimglucoseLab(_spec(run_dir), cache_dir=run_dir / "lab") as lab:
        runs = lab.completed_runs()
    assert sorted(runs) == sorted(keys) and set(runs.values()) == {1}, runs


def _spec(run_dir: Path):
    with CampaignStore(run_dir / "store.sqlite") as store:
        return store.spec(store.campaign_ids()[0])
