"""`wetloop bench ray`: one batch of simulated patient-days through the local process pool and through
Ray (a local cluster of 1 and of 2 nodes, or a running cluster), as ratios from one run.

The batch: `regimens` random regimens (uniform in the spec's hard limits) for each of `patients`
virtual patients, one lab per patient sharing one executor. Each leg runs the batch twice, in two fresh
caches, so every day is simulated both times: `cold` includes starting the workers (and their first
import of the simulator), `warm` is the same batch on workers that already run, as a long-lived
cluster would have them. A local cluster's start is timed apart (`start_s`). Every leg has the same
CPUs on one machine (`workers`; two nodes get half each), so on one machine the ratios measure the
cost of Ray's scheduling, not a gain; on a real cluster (`--address`) the Ray leg has its nodes' CPUs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Experiment, Observation
from wetloop.lab_adapters import Executor, ProcessExecutor
from wetloop.lab_adapters._ray import RayExecutor
from wetloop.lab_adapters._ray_cluster import LocalCluster

from ._bench import _random_interventions
from ._lab import SimglucoseLab
from ._options import day_options, patient_names
from ._simday import watch_parent

__all__ = ["bench_ray", "print_ray_bench"]

Batch = list[tuple[CampaignSpec, list[Experiment]]]


def _batch(spec: CampaignSpec, patients: int, regimens: int, hours: float | None, seed: int, tag: str) -> Batch:
    names = patient_names()
    if not 1 <= patients <= len(names):
        raise ValueError(f"patients must be 1 to {len(names)} (simglucose's virtual patients), got {patients}")
    chosen = [names[i] for i in np.linspace(0, len(names) - 1, patients).round().astype(int)]  # children, adolescents, adults
    xs = _random_interventions(spec, np.random.default_rng(seed), regimens)
    out: Batch = []
    for name in chosen:
        options = {**spec.world_options, "patient": name} | ({"hours": hours} if hours is not None else {})
        s = spec.with_overrides(world_options=options)
        day_options(s)  # a bad option (e.g. hours) is an error before anything runs
        out.append(
            (s, [Experiment(campaign_id=f"bench-ray-{tag}-{name}", round=1, intervention=x, approved_by="bench") for x in xs])
        )
    return out


def _run(batch: Batch, executor: Executor, cache_dir: Path) -> tuple[float, list[Observation], int]:
    """Wall time, observations and days simulated (not answered from a cache) of the whole batch."""
    t0 = time.perf_counter()
    labs = [SimglucoseLab(spec, cache_dir=cache_dir, executor=executor) for spec, _ in batch]
    try:
        pending = [(lab, lab.submit(e)) for lab, (_, exps) in zip(labs, batch) for e in exps]
        done: list[Observation] = []
        while pending:
            still = []
            for lab, ticket in pending:
                obs = lab.poll(ticket)
                if obs is None:
                    still.append((lab, ticket))
                else:
                    done.append(obs)
            pending = still
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        simulated = sum(o.raw.get("cache") == "miss" for o in done)
    finally:
        for lab in labs:
            lab.close()
    return wall, done, simulated


def _leg(
    name: str, batches: tuple[Batch, Batch], executor: Executor, work_dir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    figures: dict[str, Any] = {"leg": name} | executor.describe()
    for label, batch in zip(("cold", "warm"), batches):
        wall, observations, simulated = _run(batch, executor, work_dir / f"{name.replace(' ', '-')}-{label}")
        failed = [o.message for o in observations if o.status != "ok"]
        if failed:
            raise RuntimeError(f"{name}: {len(failed)} day(s) failed, e.g. {failed[0]}")
        figures |= {f"{label}_s": round(wall, 2), f"{label}_simulated": simulated}
        log(f"bench ray: {name} {label}: {len(observations)} days in {wall:.1f} s ({simulated} simulated)")
    executor.shutdown()
    return figures


@contextmanager
def _ray_leg(nodes: int | None, cpus: int, address: str | None) -> Iterator[tuple[Any, float]]:
    """A connected Ray driver (a local cluster of `nodes` nodes, or `address`) and its start time."""
    import ray

    t0 = time.perf_counter()
    if address is not None:
        joined = not ray.is_initialized()
        if joined:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        try:
            yield None, time.perf_counter() - t0
        finally:
            if joined:
                ray.shutdown()
        return
    assert nodes is not None
    with LocalCluster(nodes=nodes, cpus_per_node=max(1, cpus // nodes)) as cluster:
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
        yield cluster, time.perf_counter() - t0


def bench_ray(
    spec: CampaignSpec,
    work_dir: Path,
    *,
    patients: int = 8,
    regimens: int = 8,
    hours: float | None = None,
    workers: int | None = None,
    address: str | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The figures of `wetloop bench ray` (see the module docstring)."""
    workers = workers or os.cpu_count() or 1
    batches = (_batch(spec, patients, regimens, hours, seed, "cold"), _batch(spec, patients, regimens, hours, seed, "warm"))
    days = patients * regimens
    log(f"bench ray: {days} days ({patients} patients x {regimens} regimens), {workers} worker(s) per leg")
    legs = [_leg("process pool", batches, ProcessExecutor(workers, watch_parent, (os.getpid(),)), work_dir, log)]
    ray_legs: list[tuple[str, int | None]] = [("ray cluster", None)] if address else [("ray 1 node", 1), ("ray 2 nodes", 2)]
    for name, nodes in ray_legs:
        with _ray_leg(nodes, workers, address) as (_, start_s):
            executor = RayExecutor(work_dir / f"{name.replace(' ', '-')}-records", address=address, workers=workers)
            legs.append(_leg(name, batches, executor, work_dir, log) | {"start_s": round(start_s, 2)})
    base = legs[0]
    for leg in legs:
        leg["cold_vs_pool"] = round(base["cold_s"] / leg["cold_s"], 2)
        leg["warm_vs_pool"] = round(base["warm_s"] / leg["warm_s"], 2)
    return {
        "days": days,
        "patients": patients,
        "regimens": regimens,
        "hours": hours if hours is not None else spec.world_options.get("hours", 24),
        "workers": workers,
        "cpus_here": os.cpu_count(),
        "legs": legs,
    }


def print_ray_bench(figures: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"{figures['days']} simulated days ({figures['patients']} patients x {figures['regimens']} regimens, "
        f"{figures['hours']} h each), {figures['workers']} CPU(s) per leg",
        box=box.SIMPLE,
    )
    for col in ("leg", "nodes", "start s", "cold s", "warm s", "cold: pool / leg", "warm: pool / leg"):
        table.add_column(col, justify="left" if col == "leg" else "right")
    for leg in figures["legs"]:
        start = leg.get("start_s")
        table.add_row(
            leg["leg"],
            str(leg.get("nodes", 1)),
            "-" if start is None else f"{start:.1f}",
            f"{leg['cold_s']:.1f}",
            f"{leg['warm_s']:.1f}",
            f"{leg['cold_vs_pool']:.2f}",
            f"{leg['warm_vs_pool']:.2f}",
        )
    console.print(table)
    console.print("a ratio above 1: the leg was faster than the local process pool on the same batch")
