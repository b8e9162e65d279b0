"""`wetloop bench patient`: our campaign against random search and the simulator's own controller.

From one run with the same seed:
1. our campaign (offline proposer, autonomous review) vs its two controls (the same campaign without
   learning: its prior every round, no model fitted; and with shuffled feedback: each round's days
   permuted among its regimens before the loop learns from them) vs a random-search campaign with the same
   budget (points drawn uniformly in the unit cube of the hard limits, log-scaled where the spec says
   so) vs simglucose's basal-bolus controller given the patient's TRUE parameters (a reference the
   campaign never sees): final time in range (of the best safe regimen found), days with glucose
   below the safety threshold, wall time;
2. world-model calibration on held-out days: the model fitted on our campaign's days predicts the
   random campaign's days (regimens it never saw): 90% interval coverage, CRPS vs persistence;
3. rollout speed of the world model vs the simulator, as a ratio of simulated days per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Observation, observed_safe, observed_unsafe
from wetloop.lab_adapters import make_lab, wait_for

from ._calibration import calibration_report
from ._lab import reference_day
from ._model import TrajectoryWorldModel

CampaignFactory = Callable[..., Any]
"""Starts a campaign of the loop in a run directory, `create(spec, run_dir, learn=..., shuffle_feedback=...)`
(`CliTools.create`, injected: a world never imports the agent). The object runs with `run()` and
exposes `store`, `campaign_id`; a context manager."""

__all__ = ["bench_patient", "print_bench", "random_search"]

Pairs = list[tuple[Intervention, Observation]]


def _summary(spec: CampaignSpec, pairs: list[tuple[Intervention, Observation]], wall_s: float) -> dict[str, Any]:
    readout = spec.objective.readout
    safe = [(x, o) for x, o in pairs if observed_safe(spec, o)]
    best = max(safe, key=lambda p: spec.objective.utility(p[1].readouts[readout]), default=None)
    return {
        "experiments": len(pairs),
        "final_" + readout: None if best is None else best[1].readouts[readout],
        "best_intervention": None if best is None else best[0].values,
        "unsafe_days": sum(observed_unsafe(spec, o) for _, o in pairs),
        "wall_s": round(wall_s, 1),
    }


def random_search(spec: CampaignSpec, cache_dir: Path, seed: int) -> tuple[list[tuple[Intervention, Observation]], float]:
    """Same budget, batches run in parallel by the same lab; returns the pairs and the wall time."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[Intervention, Observation]] = []
    t0 = time.perf_counter()
    with make_lab(spec, cache_dir=cache_dir) as lab:
        for rnd in range(1, spec.budget.rounds + 1):
            xs = _random_interventions(spec, rng, spec.budget.batch)
            exps = [Experiment(campaign_id=f"random-{seed}", round=rnd, intervention=x, approved_by="policy:random") for x in xs]
            tickets = [lab.submit(e) for e in exps]
            pairs += list(zip(xs, wait_for(lab, tickets, poll_s=0.1)))
    return pairs, time.perf_counter() - t0


def _random_interventions(spec: CampaignSpec, rng: np.random.Generator, n: int) -> list[Intervention]:
    """n interventions uniform in the hard-limit box (in each variable's unit scale, e.g. log)."""
    return [
        Intervention(
            values={v.name: v.from_unit(float(u)) for v, u in zip(spec.interventions, rng.random(len(spec.interventions)))}
        )
        for _ in range(n)
    ]


def _rollout_speed(world: TrajectoryWorldModel, spec: CampaignSpec, sim_day_s: float, n: int = 64) -> dict[str, float]:
    rng = np.random.default_rng(0)
    xs = _random_interventions(spec, rng, 2 * n)
    model = world.botorch_model()
    model.posterior(world.encode(xs[n:]).unsqueeze(-2))  # warm-up on other regimens: the model keeps its last rollout
    X = world.encode(xs[:n]).unsqueeze(-2)
    t0 = time.perf_counter()
    samples = model.posterior(X).values
    seconds = time.perf_counter() - t0
    model_days_per_s = samples.shape[0] * samples.shape[1] / seconds
    return {
        "model_trajectories_per_s": round(model_days_per_s, 1),
        "simulator_days_per_s_one_core": round(1.0 / sim_day_s, 3),
        "speedup": round(model_days_per_s * sim_day_s, 1),
    }


def _loop(spec: CampaignSpec, run_dir: Path, create: CampaignFactory, **control: bool) -> tuple[Pairs, float, Any]:
    """One campaign of the loop: its (regimen, day) pairs, wall time and last model record."""
    t0 = time.perf_counter()
    with create(spec, run_dir, **control) as c:
        c.run()
        observed = c.store.observations(c.campaign_id)
        pairs = [(e.intervention, observed[e.key]) for e in c.store.experiments(c.campaign_id) if e.key in observed]
        last_model = c.store.latest(c.campaign_id, "model")  # fitted on every day the campaign observed
    return pairs, time.perf_counter() - t0, last_model


def bench_patient(spec: CampaignSpec, work_dir: Path, create: CampaignFactory, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    work_dir = Path(work_dir)
    readout = spec.objective.readout
    console.print("[bold]1/5[/] our campaign")
    ours_pairs, ours_wall, last_model = _loop(spec, work_dir / "ours", create)
    console.print("[bold]2/5[/] the same campaign without learning (no-learning control)")
    fixed_pairs, fixed_wall, _ = _loop(spec, work_dir / "no-learning", create, learn=False)
    console.print("[bold]3/5[/] the same campaign with shuffled feedback (negative control)")
    shuffled_pairs, shuffled_wall, _ = _loop(spec, work_dir / "shuffled", create, shuffle_feedback=True)
    console.print("[bold]4/5[/] random search, same budget")
    random_pairs, random_wall = random_search(spec, work_dir / "random-lab", spec.seed)
    console.print("[bold]5/5[/] the simulator's own basal-bolus controller with the patient's true parameters")
    ref = reference_day(spec)
    world = TrajectoryWorldModel.load(last_model.payload["path"], spec)
    held_out = calibration_report(world, random_pairs)
    sim_day_s = float(np.median([o.raw.get("wall_s", np.nan) for _, o in random_pairs if o.raw.get("wall_s")]))
    return {
        "patient": spec.world_options.get("patient"),
        "budget": f"{spec.budget.rounds} rounds x {spec.budget.batch}",
        "seed": spec.seed,
        "ours": _summary(spec, ours_pairs, ours_wall),
        "no_learning": _summary(spec, fixed_pairs, fixed_wall),
        "shuffled_feedback": _summary(spec, shuffled_pairs, shuffled_wall),
        "random": _summary(spec, random_pairs, random_wall),
        "reference_controller": {"final_" + readout: ref.readouts[readout], "unsafe_days": int(observed_unsafe(spec, ref))},
        "calibration_held_out": held_out.model_dump(),
        "rollout_speed": _rollout_speed(world, spec, sim_day_s),
    }


def print_bench(fig: dict[str, Any], console: Console) -> None:
    readout = next(k for k in fig["ours"] if k.startswith("final_"))
    t = Table(title=f"patient {fig['patient']}, {fig['budget']}, seed {fig['seed']}", box=box.SIMPLE_HEAD)
    t.add_column("campaign")
    for header in (readout.removeprefix("final_").replace("_", " "), "days", "unsafe days", "wall s"):
        t.add_column(header, justify="right", no_wrap=True)
    t.add_column("best regimen", ratio=1)
    for name in ("ours", "no_learning", "shuffled_feedback", "random"):
        if name not in fig:  # figures saved before the controls were added
            continue
        r = fig[name]
        best = ", ".join(f"{k}={v:.3g}" for k, v in (r["best_intervention"] or {}).items())
        value = f"{r[readout]:.3f}" if r[readout] is not None else "-"
        t.add_row(name.replace("_", " "), value, str(r["experiments"]), str(r["unsafe_days"]), f"{r['wall_s']:.0f}", best)
    ref = fig["reference_controller"]
    t.add_row("reference", f"{ref[readout]:.3f}", "1", str(ref["unsafe_days"]), "-", "simglucose BBController, true parameters")
    console.print(t)
    cal = fig["calibration_held_out"]
    console.print(
        f"calibration on {cal['n_days']} held-out days (the random campaign's): one-step CRPS {cal['one_step_crps']:.2f} "
        f"mg/dL vs persistence {cal['persistence_mae']:.2f}; {cal['level']:.0%} interval coverage one-step "
        f"{cal['one_step_coverage']:.2f}, open-loop {cal['open_loop_coverage']:.2f} (open-loop CRPS {cal['open_loop_crps']:.1f} mg/dL)",
        soft_wrap=True,
    )
    s = fig["rollout_speed"]
    console.print(
        f"rollout speed: world model {s['model_trajectories_per_s']:.0f} simulated days/s vs simulator "
        f"{s['simulator_days_per_s_one_core']} days/s on one core: {s['speedup']:.0f}x",
        soft_wrap=True,
    )
