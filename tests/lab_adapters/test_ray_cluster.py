"""A two-node Ray cluster on 127.0.0.1 inside a loopback-only network namespace: kill a worker, then a
whole node, in the middle of a batch; kill -9 a campaign and resume it with the cluster still up. Every
experiment must run once and every observation arrive.

The scenario (`ray_scenario.py`) runs in one child process under `unshare -n` (so the cluster, which
listens on every interface, is reachable from nowhere else); these tests audit its report.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("ray_scenario.py")
# Looked up, not imported: ray imported before sila2 in one process makes sila2's protobuf modules clash
# (pytest imports every test module first); the scenario imports ray in its own process.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the optional extra: pip install 'wetloop[ray]'"),
]


def _loopback_namespace() -> str | None:
    """Why a loopback-only network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs `unshare` (util-linux) and `ip` (iproute2)"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (
            f"`unshare -n` is not permitted here ({probe.stderr.strip() or probe.returncode}); it needs root or user namespaces"
        )
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    why = _loopback_namespace()
    if why:
        pytest.skip(f"the Ray cluster tests run only inside a loopback-only network namespace: {why}")
    out = tmp_path_factory.mktemp("ray-scenario")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = f'ip link set lo up && exec "{sys.executable}" "{SCENARIO}" "{out}"'
    proc = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", script],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = proc.communicate(timeout=400)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the scenario and the campaigns it started
        proc.wait()
        pids = out / "pids"  # the cluster's own processes, should the scenario have died before stopping them
        for pid in pids.read_text().split() if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    path = out / "report.json"
    assert path.exists(), f"the scenario wrote no report (exit {proc.returncode}):\n{log[-4000:]}"
    found = json.loads(path.read_text())
    assert "total_s" in found, f"the scenario did not finish (exit {proc.returncode}):\n{log[-4000:]}"
    return found


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    step = report[name]
    assert "error" not in step, step["error"]
    return step


def test_a_killed_worker_task_is_run_again_and_each_experiment_runs_once(report: dict[str, Any]) -> None:
    step = _step(report, "A")
    keys = [f"a{i}" for i in range(4)]
    assert step["started"][step["victim"]] == 2  # killed, then re-run by Ray
    assert step["finished"] == dict.fromkeys(keys, 1) and step["ledger_runs"] == dict.fromkeys(keys, 1)
    assert step["returned"] == keys
    assert step["result_refs_held_before"] == 4  # one reference per submitted task while it runs
    assert step["refs_left"] == 0 and step["result_refs_held_after"] == 0  # dropped once read: nothing to reconstruct


def test_a_killed_node_loses_no_result_and_runs_nothing_twice(report: dict[str, Any]) -> None:
    step = _step(report, "B")
    keys = ["b0", "b1", "b2", "b3", "big"]
    assert step["killed_node_workers"] >= 1 and step["alive_nodes"] == 1
    assert sum(step["started"].values()) > len(keys)  # a task that ran on the killed node started again
    assert step["finished"] == dict.fromkeys(keys, 1) and step["ledger_runs"] == dict.fromkeys(keys, 1)
    assert step["returned"] == keys


def test_a_result_lost_with_its_node_is_reconstructed_from_the_record(report: dict[str, Any]) -> None:
    step = _step(report, "B")
    assert step["answered_from_record"].get("big", 0) >= 1  # Ray re-ran the finished task: the ledger answered
    assert step["started"]["big"] == 1 and step["big_size"] == 400_000  # the job itself never ran again


def test_a_campaign_killed_mid_batch_resumes_on_the_running_cluster(report: dict[str, Any]) -> None:
    step = _step(report, "C")
    assert step["resume_rc"] == 0, step["resume_err"]
    assert step["observed_at_kill"] < 2  # killed with the first batch in flight
    keys = step["experiments"]
    assert len(keys) == 4 == len(set(keys))
    assert step["observations"] == dict.fromkeys(keys, "ok")
    assert step["ledger_runs"] == dict.fromkeys(keys, 1)  # each day recorded once, through Ray
    assert step["simulated_runs"] == dict.fromkeys(keys, 1)  # and simulated once


def test_bench_ray_times_the_same_batch_through_the_pool_and_a_running_cluster(report: dict[str, Any]) -> None:
    step = _step(report, "D")
    assert step["days"] == 4 and [leg["leg"] for leg in step["legs"]] == ["process pool", "ray cluster"]
    pool, cluster = step["legs"]
    assert cluster["nodes"] == 2 and cluster["address"].startswith("127.0.0.1:")
    for leg in (pool, cluster):  # every day simulated in both batches: no cache or ledger answered for another leg
        assert leg["cold_simulated"] == leg["warm_simulated"] == 4
        assert leg["warm_vs_pool"] == round(pool["warm_s"] / leg["warm_s"], 2) and leg["cold_s"] > 0


def test_a_spec_asking_for_ray_without_an_address_gets_a_local_cluster_of_its_own(report: dict[str, Any]) -> None:
    step = _step(report, "E")
    assert step["executor"] == "ray" and step["address"] == "local" and step["nodes"] == 1 and step["cpus"] == 1
    assert step["status"] == "ok" and list(step["runs"].values()) == [1]  # recorded by the ledger, once
    assert step["connected_after_close"] is False  # the lab stopped the cluster it started


def test_the_scenario_fits_the_test_budget(report: dict[str, Any]) -> None:
    assert report["start_s"] < 60 and report["total_s"] < 300, report
