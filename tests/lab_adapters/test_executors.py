"""Executors without a cluster: the spec's lab options, settings precedence, the process pool's worker
loss, the Ray ledger's claim rules (a plain object here), and a lab with a shared executor."""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from wetloop.campaign import CampaignSpec, Experiment, Intervention, default_spec_path, get_world, load_spec
from wetloop.lab_adapters import (
    Executor,
    LabError,
    LabSettings,
    ProcessExecutor,
    WorkerLost,
    executor_options,
    make_executor,
)

SPEC = load_spec(default_spec_path())


def with_lab_options(**options: Any) -> CampaignSpec:
    return SPEC.with_overrides(lab={"adapter": "local", "options": options})


# -- the spec -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, problem",
    [
        ({"executor": "ray", "address": "auto", "retries": 2}, None),
        ({"executor": "process"}, None),
        ({"executor": "rays"}, "lab.options.executor: Input should be 'process' or 'ray'"),
        ({"executor": "process", "address": "auto"}, "lab.options: address: only the ray executor takes them"),
        ({"executor": "ray", "retries": 11}, "lab.options.retries: Input should be less than or equal to 10"),
        ({"workers": 4}, "lab.options.workers: not a field here; the fields are: address, executor, retries"),
    ],
)
def test_a_simulated_world_checks_its_executor_options_with_the_spec(options: dict[str, Any], problem: str | None) -> None:
    spec = with_lab_options(**options)
    problems = get_world(spec.world).check_spec(spec)
    if problem is None:
        assert problems == []
    else:
        assert any(p.startswith(problem) for p in problems), problems


def test_a_world_without_lab_options_still_refuses_them() -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "wetloop/worlds/custom/specs/oral_dosing.yaml")
    spec = spec.with_overrides(lab={"adapter": "local", "options": {"executor": "ray"}})
    assert "lab.options: the local lab takes no options, got ['executor']; remove them" in get_world(spec.world).check_spec(spec)


def test_a_real_lab_behind_a_protocol_adapter_is_never_given_an_executor() -> None:
    spec = SPEC.with_overrides(lab={"adapter": "http", "options": {"base_url": "http://127.0.0.1:1", "executor": "ray"}})
    problems = get_world(spec.world).check_spec(spec)
    assert any(p.startswith("lab.options.executor: not a field here") for p in problems), problems
    assert executor_options(spec) == executor_options(SPEC)  # only a local lab's options choose an executor


def test_the_lab_refuses_bad_executor_options_before_anything_runs(tmp_path: Path) -> None:
    from wetloop.worlds.simglucose import SimglucoseLab

    with pytest.raises(LabError, match=r"lab.options.executor: Input should be 'process' or 'ray'"):
        SimglucoseLab(with_lab_options(executor="threads"), cache_dir=tmp_path)
    assert not any(tmp_path.rglob("*.json"))


# -- which executor -------------------------------------------------------------------------------
def _make(spec: CampaignSpec, settings: LabSettings, tmp_path: Path) -> Executor:
    return make_executor(executor_options(spec), settings, workers=2, record_dir=tmp_path / "records")


def test_the_default_is_the_process_pool(tmp_path: Path) -> None:
    executor = _make(SPEC, LabSettings(), tmp_path)
    assert isinstance(executor, ProcessExecutor) and executor.describe() == {"executor": "process", "workers": 2}


def test_the_environment_picks_ray_and_the_spec_overrides_it_field_by_field(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("ray", reason="needs the optional extra ray")
    monkeypatch.setenv("WETLOOP_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("WETLOOP_LAB_RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setenv("WETLOOP_LAB_RAY_RETRIES", "5")
    from_env = _make(SPEC, LabSettings(), tmp_path)
    assert from_env.describe() == {"executor": "ray", "address": "10.0.0.5:6379", "retries": 5}  # not connected yet
    from_spec = _make(with_lab_options(address="auto", retries=0), LabSettings(), tmp_path)
    assert from_spec.describe() == {"executor": "ray", "address": "auto", "retries": 0}
    assert isinstance(_make(with_lab_options(executor="process"), LabSettings(), tmp_path), ProcessExecutor)


def test_without_the_extra_the_ray_executor_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    monkeypatch.delitem(sys.modules, "wetloop.lab_adapters._ray", raising=False)
    with pytest.raises(LabError, match=r'needs the optional extra "ray" \(ray is missing\): pip install "wetloop\[ray\]"'):
        _make(with_lab_options(executor="ray"), LabSettings(), tmp_path)


# -- the process pool -----------------------------------------------------------------------------
def die(job: dict[str, Any]) -> dict[str, Any]:
    os._exit(3)


def echo(job: dict[str, Any]) -> dict[str, Any]:
    if job.get("raise"):
        raise ValueError(job["raise"])
    return dict(job)


def test_a_dead_pool_worker_is_worker_lost_and_the_next_job_gets_a_new_pool() -> None:
    executor = ProcessExecutor(1)
    try:
        lost = [executor.submit("k1", die, {}), executor.submit("k2", echo, {"n": 1})]
        with pytest.raises(WorkerLost, match="a worker process died"):
            executor.result(lost[0])
        fresh = [executor.submit(f"n{n}", echo, {"n": n}) for n in range(4)]  # a new pool, more than it dispatches at once
        with pytest.raises(WorkerLost):  # the old pool's other future: it must not close the new pool
            executor.result(lost[1])
        assert [executor.result(f) for f in fresh] == [{"n": n} for n in range(4)]
        with pytest.raises(ValueError, match="bad dose"):  # the job's own exception is its own
            executor.result(executor.submit("k4", echo, {"raise": "bad dose"}))
    finally:
        executor.shutdown()


# -- the ledger's rules (a plain object here; a Ray actor on the driver's node in use) ----------------
@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    pytest.importorskip("ray", reason="needs the optional extra ray")
    from wetloop.lab_adapters._ray import Ledger

    return Ledger(str(tmp_path / "records"), lease_s=60.0)


def test_a_retry_of_the_same_task_takes_its_claim_over_and_another_task_waits(ledger: Any) -> None:
    first = {"task": "t1", "worker": "w1"}
    assert ledger.claim("k", first) == {"state": "run"}
    assert ledger.claim("k", {"task": "t1", "worker": "w2"}) == {"state": "run"}  # Ray retries only a dead attempt
    assert ledger.claim("k", {"task": "t2", "worker": "w3"}) == {"state": "wait", "holder": {"task": "t1", "worker": "w2"}}
    assert not ledger.renew("k", first)  # the old attempt lost its claim


def test_a_claim_whose_lease_ran_out_is_taken_over(ledger: Any) -> None:
    ledger.lease_s = 0.0
    assert ledger.claim("k", {"task": "t1", "worker": "w1"}) == {"state": "run"}
    assert ledger.claim("k", {"task": "t2", "worker": "w2"}) == {"state": "run"}


def test_a_recorded_result_answers_every_later_claim_and_the_first_result_stands(ledger: Any) -> None:
    holder = {"task": "t1", "worker": "w1"}
    ledger.claim("k", holder)
    ledger.record("k", holder, {"value": 1})
    assert ledger.claim("k", {"task": "t9", "worker": "w9"}) == {"state": "done", "result": {"value": 1}}
    ledger.record("k", {"task": "t2", "worker": "w2"}, {"value": 2})  # a duplicate run is counted, not kept
    assert ledger.claim("k", holder) == {"state": "done", "result": {"value": 1}}
    assert ledger.runs() == {"k": 2} and ledger.answered_from_record() == {"k": 2}


# -- a lab with a shared executor -----------------------------------------------------------------
class FailingExecutor(Executor):
    """Every job's worker dies; counts what the lab asks of it."""

    kind = "failing"

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.cancelled = 0
        self.shut = 0

    def submit(self, key: str, fn: Any, job: dict[str, Any]) -> Future[dict[str, Any]]:
        self.submitted.append(key)
        future: Future[dict[str, Any]] = Future()
        future.set_exception(RuntimeError("node gone"))
        return future

    def result(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        raise WorkerLost("Ray could not finish the task (NodeDiedError)", "check the cluster's nodes")

    def cancel(self, future: Future[dict[str, Any]]) -> None:
        self.cancelled += 1

    def shutdown(self, wait: bool = True) -> None:
        self.shut += 1


def test_a_lab_reports_a_lost_worker_as_a_failed_experiment_and_leaves_a_shared_executor_running(tmp_path: Path) -> None:
    from wetloop.worlds.simglucose import SimglucoseLab

    executor = FailingExecutor()
    exps = [
        Experiment(campaign_id="c", round=0, intervention=Intervention(values={"basal": b, "carb_ratio": 15.0}), approved_by="t")
        for b in (0.8, 0.9)
    ]
    with SimglucoseLab(SPEC, cache_dir=tmp_path, executor=executor) as lab:
        tickets = [lab.submit(e) for e in exps]
        obs = lab.poll(tickets[0])
        lab.cancel(tickets[1])
    assert executor.submitted == [e.key for e in exps] and executor.cancelled == 1 and executor.shut == 0
    assert obs is not None and obs.status == "failed"
    assert obs.message.startswith(
        "the simulation raised WorkerLost: Ray could not finish the task (NodeDiedError); check the cluster's nodes"
    )
