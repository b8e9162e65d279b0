"""`wetloop bench adapters`: what a campaign pays per experiment for reaching its lab through a protocol.

The same short campaign (same spec, seed and world-model settings, so the same experiments) runs
with the in-process lab and through each adapter in `ADAPTERS` whose loopback server can start here
(`serve_for_bench`, see `lab_adapters/_bench_servers.py`); the others are listed with the reason.
Every run simulates its own days (fresh caches), with the same number of lab workers. With
`repeat` > 1 the labs take turns, trial after trial, and each lab's median run is reported.

Per run:
    wall_s          from the campaign's start to its end (servers are up before it starts)
    simulation_s    time during which at least one day was being simulated (the union of the days'
                    [started_at, finished_at] from their raw results): the lab's own work
    overhead_s      (wall_s - simulation_s) / experiments: the campaign's cost per experiment beyond
                    simulating (model fits, planning, the lab round trips, waiting on polls)
    ratio           overhead_s / the in-process lab's overhead_s
    lab_calls       submit and poll calls the campaign made (it polls every `poll_interval_s`)
    ms_per_call     mean time inside one of those calls: the adapter's round trip
    requests        HTTP requests sent, retries included (HTTP adapter only)
    timed_results   results whose raw payload says when their simulation ran; where a lab does not
                    say, its simulation time counts as overhead (the table marks the row)
    first_simulation_s  from the campaign's start to the first simulation's start (JSON only): the
                    lab's start-up (worker processes, imports) is the largest part of the overhead
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Experiment, LabRef, Observation, Ticket, WetloopError, get_world
from wetloop.lab_adapters import ADAPTERS, BenchServerUnavailable, Lab, bench_server

from .configuration import AgentSettings
from .runner import Campaign, default_lab

__all__ = ["bench_adapters", "print_adapters_bench", "simulation_seconds", "short_day"]


def short_day(spec: CampaignSpec, rounds: int, batch: int, hours: float = 4.0) -> CampaignSpec:
    """The spec with `hours`-long days (two meals, at 1 h and 2.5 h) and a rounds x batch budget."""
    meals = [[1.0, 45.0], [2.5, 60.0]] if hours >= 3 else [[0.5, 30.0]]
    options = {**spec.world_options, "hours": hours, "meals": meals}
    return spec.with_overrides(world_options=options, budget={"rounds": rounds, "batch": batch})


def simulation_seconds(observations: Iterable[Observation], start: float, end: float) -> float:
    """Seconds of [start, end] (epoch time) during which at least one of the days was simulating."""
    spans = sorted(
        (max(float(o.raw["started_at"]), start), min(float(o.raw["finished_at"]), end))
        for o in observations
        if "started_at" in o.raw and "finished_at" in o.raw
    )
    total, reach = 0.0, start
    for lo, hi in spans:
        if hi > max(lo, reach):
            total += hi - max(lo, reach)
            reach = hi
    return total


class _TimedLab(Lab):
    """Delegates to a lab and adds up the time spent inside its calls."""

    def __init__(self, inner: Lab) -> None:
        super().__init__(inner.spec, inner.name)
        self.inner, self.calls, self.seconds = inner, 0, 0.0

    def _timed(self, fn: Any, arg: Any) -> Any:
        tic = time.perf_counter()
        try:
            return fn(arg)
        finally:
            self.calls, self.seconds = self.calls + 1, self.seconds + time.perf_counter() - tic

    def _start(self, experiment: Experiment) -> Ticket:
        return self._timed(self.inner.submit, experiment)

    def _poll(self, ticket: Ticket) -> Observation | None:
        return self._timed(self.inner.poll, ticket)

    def _cancel(self, ticket: Ticket) -> None:
        self._timed(self.inner.cancel, ticket)

    def _shutdown(self) -> None:
        self.inner.close()


def _run(label: str, spec: CampaignSpec, run_dir: Path, world: Any, workers: int | None) -> dict[str, Any]:
    """One campaign to its end, timed; the figures of one row."""
    made: list[_TimedLab] = []

    def factory(s: CampaignSpec, d: Path) -> Lab:
        made.append(_TimedLab(default_lab(s, d, workers)))
        return made[-1]

    settings = AgentSettings(lab_workers=workers)
    start, tic = time.time(), time.perf_counter()
    with Campaign.create(
        spec, run_dir, settings=settings, lab_factory=factory, world_config=world, console=Console(quiet=True)
    ) as c:
        c.run()
        wall, end = time.perf_counter() - tic, time.time()
        observations = list(c.store.observations(c.campaign_id).values())
        regimens = sorted(e.intervention.key() for e in c.store.experiments(c.campaign_id))
    lab, n = made[0], max(len(observations), 1)
    sim = simulation_seconds(observations, start, end)
    first = min((float(o.raw["started_at"]) for o in observations if "started_at" in o.raw), default=None)
    return {
        "lab": label,
        "experiments": len(observations),
        "ok": sum(o.status == "ok" for o in observations),
        "wall_s": round(wall, 2),
        "simulation_s": round(sim, 2),
        "overhead_s": round((wall - sim) / n, 3),
        "timed_results": sum("started_at" in o.raw for o in observations),
        "lab_calls": lab.calls,
        "first_simulation_s": None if first is None else round(first - start, 2),
        "ms_per_call": round(1000 * lab.seconds / max(lab.calls, 1), 2),
        "requests": getattr(lab.inner, "requests_sent", None),
        "regimens": regimens,
    }


def bench_adapters(
    spec: CampaignSpec,
    work_dir: Path,
    *,
    adapters: Sequence[str] | None = None,
    repeat: int = 1,
    world: Any = None,
    workers: int | None = 2,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the campaign in-process and through each adapter (default: every one in `ADAPTERS`),
    `repeat` times in turn (in-process, then each adapter), and keep each lab's median run.

    Returns {"spec": ..., "runs": [row, ...] (in-process first), "skipped": [{"adapter", "reason"}]};
    each row carries `ratio` (its overhead / the in-process one), `same_experiments` and `trials`.
    `world`: the world model's settings (default: the world's `light_model_config()`, since the bench
    is about the lab round trips, not about fitting).
    """
    world = world if world is not None else get_world(spec.world).light_model_config()
    progress = console or Console(stderr=True)
    say = lambda text: progress.print(text, markup=False, highlight=False)  # noqa: E731 - reasons hold [extras]
    say(
        f"bench adapters: {spec.budget.rounds} rounds x {spec.budget.batch}, {spec.world_options.get('hours', 24)} h days, {repeat} trial(s)"
    )
    names = list(adapters if adapters is not None else sorted(ADAPTERS))
    trials, skipped = _trials(spec.with_overrides(lab=LabRef()), Path(work_dir), names, repeat, world, workers, say)
    runs = [_median(rows) for rows in trials.values() if rows]
    reference = runs[0]["regimens"]
    for row in runs:
        row["ratio"] = round(row["overhead_s"] / runs[0]["overhead_s"], 3) if runs[0]["overhead_s"] > 0 else None
        row["same_experiments"] = row.pop("regimens") == reference
    return {
        "spec": {
            "rounds": spec.budget.rounds,
            "batch": spec.budget.batch,
            "hours": spec.world_options.get("hours", 24),
            "seed": spec.seed,
            "workers": workers,
            "repeat": repeat,
        },
        "runs": runs,
        "skipped": [{"adapter": k, "reason": v} for k, v in skipped.items()],
    }


def _trials(
    spec: CampaignSpec, work_dir: Path, names: list[str], repeat: int, world: Any, workers: int | None, say: Any
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Every lab's runs, taking turns and starting each trial with the next lab, so neither drifting
    machine load nor the position in a trial favours one; and why some adapters were skipped."""
    labs = ["in-process", *names]
    trials: dict[str, list[dict[str, Any]]] = {lab: [] for lab in labs}
    skipped: dict[str, str] = {}
    for i in range(repeat):
        for name in labs[i % len(labs) :] + labs[: i % len(labs)]:
            if name in skipped:
                continue
            try:
                trials[name].append(_one(name, spec, work_dir / f"trial-{i}" / name, world, workers))
                say(f"  trial {i + 1}: {name} {trials[name][-1]['wall_s']} s")
            except (BenchServerUnavailable, WetloopError, OSError) as exc:
                skipped[name] = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                say(f"  {name}: skipped ({skipped[name]})")
    return trials, skipped


def _one(name: str, spec: CampaignSpec, work_dir: Path, world: Any, workers: int | None) -> dict[str, Any]:
    """One run of the campaign with the in-process lab, or through adapter `name` and its bench server."""
    if name == "in-process":
        return _run(name, spec, work_dir, world, workers)
    with bench_server(name)(spec, work_dir, workers=workers) as options:
        remote = spec.with_overrides(lab=LabRef(adapter=name, options=options))
        return _run(name, remote, work_dir / "run", world, workers)


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median overhead (a whole run, so its figures stay consistent with each other)."""
    return {**sorted(rows, key=lambda r: r["overhead_s"])[len(rows) // 2], "trials": len(rows)}


def print_adapters_bench(figures: dict[str, Any], out: Console) -> None:
    """The figures as a table (fits 80 columns), then notes and the skipped adapters with their reasons."""
    s = figures["spec"]
    trials = f", median of {s['repeat']}" if s.get("repeat", 1) > 1 else ""
    table = Table(
        title=f"overhead per experiment: {s['rounds']}x{s['batch']} {s['hours']:g}-h days, {s['workers']} workers{trials}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("lab", "ok", "wall s", "sim s", "overhead s/exp", "ratio", "ms/call", "requests"):
        table.add_column(col, justify="left" if col == "lab" else "right", no_wrap=True)
    for r in figures["runs"]:
        mark = "" if r["timed_results"] == r["experiments"] else " *"
        ratio = "1" if r["lab"] == "in-process" else (f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-")
        table.add_row(
            r["lab"] + mark,
            f"{r['ok']}/{r['experiments']}",
            f"{r['wall_s']:.1f}",
            f"{r['simulation_s']:.1f}",
            f"{r['overhead_s']:.2f}",
            ratio,
            f"{r['ms_per_call']:.1f}",
            "-" if r["requests"] is None else str(r["requests"]),
        )
    out.print(table)
    for note in _notes(figures):
        out.print(f"  {note}", soft_wrap=True, markup=False, highlight=False)


def _notes(figures: dict[str, Any]) -> list[str]:
    runs = figures["runs"]
    notes = ["ms/call: time inside one submit or poll call of the adapter (the round trip)"]
    if any(r["timed_results"] < r["experiments"] for r in runs):
        notes.append("* some results do not say when their simulation ran: that time counts as overhead")
    notes += [f"{r['lab']}: ran other experiments than in-process (compare with care)" for r in runs if not r["same_experiments"]]
    return notes + [f"{s['adapter']}: skipped: {s['reason']}" for s in figures["skipped"]]
