"""The Ray cluster scenario of `test_ray_cluster.py`, run inside a loopback-only network namespace.

    python tests/lab_adapters/ray_scenario.py OUT_DIR

Starts a two-node Ray cluster on 127.0.0.1 (`LocalCluster`) and, as its driver:
  A. kills -9 the worker running one task of a batch (Ray re-runs it);
  B. kills -9 a whole node (its raylet and workers, by PID) in the middle of a batch, after one task
     with a large result (kept in that node's object store, unread) finished there: Ray re-runs the
     lost tasks and reconstructs the lost result;
  C. adds a node, runs a real campaign (`wetloop run`, simulated days as Ray tasks) in a child process,
     kills it -9 mid-batch, and resumes it (`wetloop resume`) while the cluster stays up;
  D. runs `bench ray` on a tiny batch against the running cluster (its `--address` leg);
  E. in a child process, a lab whose spec says `executor: ray` and no address starts a local cluster of
     its own, runs a day there, and stops it on close.
Each task's job function leaves a line per start and per finish on disk; OUT_DIR/report.json holds
what the test audits. Every process started here is stopped here (the cluster's by PID).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import yaml
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from wetloop.campaign import CampaignStore, default_spec_path
from wetloop.lab_adapters._disk import DayStore
from wetloop.lab_adapters._ray import RayExecutor
from wetloop.lab_adapters._ray_cluster import LocalCluster

OUT = Path(sys.argv[1])
REPO = Path(__file__).resolve().parents[2]
FAST_ENV = {
    "WETLOOP_WORLDMODEL_HIDDEN": "32",
    "WETLOOP_WORLDMODEL_LAYERS": "2",
    "WETLOOP_WORLDMODEL_EPOCHS": "10",
    "WETLOOP_WORLDMODEL_MIN_STEPS": "150",
    "WETLOOP_WORLDMODEL_PARTICLES": "4",
}
report: dict[str, Any] = {}


def slow_job(job: dict[str, Any]) -> dict[str, Any]:
    """A stand-in simulator: logs its start (pid, node), sleeps, logs its finish, returns `size` bytes."""
    node = ray.get_runtime_context().get_node_id()
    folder = Path(job["dir"])
    with open(folder / "started" / job["key"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {node}\n")
    time.sleep(job["seconds"])
    with open(folder / "finished" / job["key"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    return {"key": job["key"], "node": node, "payload": "x" * job.get("size", 0)}


def lines(folder: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text(encoding="utf-8").split() for p in folder.iterdir()} if folder.is_dir() else {}


def started(folder: Path) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for p in (folder / "started").iterdir():
        rows = [r.split() for r in p.read_text(encoding="utf-8").splitlines()]
        out[p.name] = [(int(pid), node) for pid, node in rows]
    return out


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


def held_refs() -> set[str]:
    """The objects this driver still holds a reference to (Ray's reference table), as hex ids."""
    table = ray._private.worker.global_worker.core_worker.get_all_reference_counts()
    return {key.decode() if isinstance(key, bytes) else str(key) for key in table}  # keys: hex ids as bytes


def batch_dir(name: str) -> Path:
    folder = OUT / name
    for sub in ("started", "finished"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def audit(folder: Path, executor: RayExecutor, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "started": {k: len(v) for k, v in started(folder).items()},
        "finished": {k: len(v) for k, v in lines(folder / "finished").items()},
        "ledger_runs": executor.runs(),
        "returned": sorted(k for k, r in results.items() if r["key"] == k),
    }


def step_worker_kill(cluster: LocalCluster) -> dict[str, Any]:
    folder = batch_dir("A")
    executor = RayExecutor(folder / "records", address=cluster.address, retries=3)
    keys = [f"a{i}" for i in range(4)]
    futures = {k: executor.submit(k, slow_job, {"dir": str(folder), "key": k, "seconds": 3}) for k in keys}
    refs = {ref.hex() for ref in executor._refs.values()}
    held_before = len(refs & held_refs())
    victim = wait_until(lambda: next(iter(started(folder).items()), None), "a task to start")
    os.kill(victim[1][0][0], signal.SIGKILL)
    results = {k: executor.result(f) for k, f in futures.items()}
    out = audit(folder, executor, results) | {"victim": victim[0], "refs_left": len(executor._refs)}
    with contextlib.suppress(TimeoutError):  # Ray drops a released reference asynchronously
        wait_until(lambda: not refs & held_refs(), "the results' references to go", timeout_s=5)
    out |= {"result_refs_held_before": held_before, "result_refs_held_after": len(refs & held_refs())}
    executor.shutdown()
    return out


def step_node_kill(cluster: LocalCluster) -> dict[str, Any]:
    folder = batch_dir("B")
    executor = RayExecutor(folder / "records", address=cluster.address, retries=3)
    here = ray.get_runtime_context().get_node_id()
    other = next(n for n in cluster.nodes() if n.node_id != here)
    # a large result (over Ray's inline limit) that stays in the other node's object store, unread
    on_other = NodeAffinitySchedulingStrategy(other.node_id, soft=True)
    job = {"dir": str(folder), "key": "big", "seconds": 0.1, "size": 400_000}
    big = executor.task_options(scheduling_strategy=on_other).remote(slow_job, "big", job, executor._ledger)
    ray.wait([big], fetch_local=False, timeout=90)
    keys = [f"b{i}" for i in range(4)]
    futures = {k: executor.submit(k, slow_job, {"dir": str(folder), "key": k, "seconds": 3}) for k in keys}

    def running_there() -> list[int]:
        runs = started(folder)
        finished = lines(folder / "finished")
        return [
            pid for k, rows in runs.items() if k != "big" and k not in finished for pid, node in rows if node == other.node_id
        ]

    workers = wait_until(running_there, "a task running on the second node")
    cluster.kill_node(other, workers)
    big_result = ray.get(big, timeout=120)  # its node is gone: Ray re-runs the task, the ledger answers
    del big
    results = {k: executor.result(f) for k, f in futures.items()}
    results["big"] = big_result
    out = audit(folder, executor, results) | {"killed_node_workers": len(workers), "big_size": len(big_result["payload"])}
    out["alive_nodes"] = sum(1 for n in ray.nodes() if n.get("Alive"))
    out["answered_from_record"] = ray.get(executor._ledger.answered_from_record.remote())
    executor.shutdown()
    return out


def count(db: Path, kind: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def step_campaign_kill(cluster: LocalCluster) -> dict[str, Any]:
    cluster.add_node()
    cluster.wait_for_nodes(2)
    folder = OUT / "C"
    folder.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(default_spec_path().read_text())
    raw["world_options"].update(hours=4, meals=[[1.0, 45.0], [2.5, 60.0]])
    raw["budget"] = {"rounds": 2, "batch": 2}
    raw["at_ceiling"] = {"action": "explore"}
    spec = folder / "short.yaml"
    spec.write_text(yaml.safe_dump(raw))
    run_dir = folder / "run"
    env = {
        **os.environ,
        **FAST_ENV,
        "WETLOOP_LAB_EXECUTOR": "ray",
        "WETLOOP_LAB_RAY_ADDRESS": cluster.address,
        "WETLOOP_LAB_CACHE_DIR": str(folder / "unused-cache"),
        "PYTHONPATH": str(REPO),
    }
    cli = [sys.executable, "-m", "wetloop.agent.cli"]
    log = open(folder / "run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*cli, "run", str(spec), "--dir", str(run_dir)], env=env, cwd=REPO, stdout=log, stderr=log)
    try:
        db = run_dir / "store.sqlite"
        wait_until(lambda: count(db, "submission") >= 2 or proc.poll() is not None, "the first batch's submissions", 180)
        observed_at_kill = count(db, "observation")
        assert proc.poll() is None, (folder / "run.log").read_text()[-3000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    done = subprocess.run([*cli, "resume", "--dir", str(run_dir)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    out: dict[str, Any] = {"observed_at_kill": observed_at_kill, "resume_rc": done.returncode, "resume_err": done.stderr[-3000:]}
    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        out["experiments"] = [e.key for e in store.experiments(cid)]
        out["observations"] = {r.key: r.payload["status"] for r in store.records(cid, "observation")}
    lab_root = next(p for p in (run_dir / "lab").iterdir() if p.is_dir())
    out["ledger_runs"] = DayStore(lab_root / "records").completed_runs()
    out["simulated_runs"] = DayStore(lab_root).completed_runs()
    return out


def step_bench(cluster: LocalCluster) -> dict[str, Any]:
    from wetloop.campaign import load_spec
    from wetloop.worlds.simglucose._bench_ray import bench_ray

    spec = load_spec(default_spec_path())
    return bench_ray(spec, OUT / "D", patients=2, regimens=2, hours=1, workers=2, address=cluster.address, log=lambda _: None)


LOCAL_LAB = """
import json, sys
import ray
from wetloop.campaign import Experiment, Intervention, default_spec_path, load_spec
from wetloop.lab_adapters import wait_for
from wetloop.worlds.simglucose import SimglucoseLab

spec = load_spec(default_spec_path())
spec = spec.with_overrides(world_options={**spec.world_options, "hours": 1}, lab={"adapter": "local", "options": {"executor": "ray"}})
x = Intervention(values={"basal": 0.8, "carb_ratio": 15.0})
with SimglucoseLab(spec, cache_dir=sys.argv[1], workers=1) as lab:
    obs = wait_for(lab, [lab.submit(Experiment(campaign_id="e", round=1, intervention=x, approved_by="t"))], timeout_s=120)[0]
    facts = lab.executor.describe() | {"status": obs.status, "runs": lab.executor.runs()}
facts["connected_after_close"] = ray.is_initialized()
print(json.dumps(facts))
"""


def step_local_cluster(cluster: LocalCluster) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="wlray", dir="/tmp")  # its own Ray folder (short: socket paths live there)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": tmp, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOCAL_LAB, str(OUT / "E")], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if done.returncode != 0:
        return {"error": done.stderr[-3000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
        (OUT / "pids").write_text(" ".join(str(p) for n in cluster.nodes() for p in cluster.pids(n)))
        report["start_s"] = round(time.perf_counter() - tic, 1)
        ray.init(address=cluster.address, log_to_driver=False)
        for name, step in (
            ("A", step_worker_kill),
            ("B", step_node_kill),
            ("C", step_campaign_kill),
            ("D", step_bench),
            ("E", step_local_cluster),
        ):
            t0 = time.perf_counter()
            try:
                report[name] = step(cluster)
            except Exception:
                report[name] = {"error": traceback.format_exc()}
            report[name]["wall_s"] = round(time.perf_counter() - t0, 1)
            (OUT / "report.json").write_text(json.dumps(report, indent=1))
    report["total_s"] = round(time.perf_counter() - tic, 1)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
