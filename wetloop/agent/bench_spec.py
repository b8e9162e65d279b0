"""`wetloop bench spec SPEC`: any campaign spec against the simple baselines, in one run, over seeds.

Per seed and with the spec's budget: ours (the campaign as the spec says), ours with the GP family
(`world_model: gp`, the scalar alternative a user might pick), ours without learning (the first
round's proposer and planner every round: the world model is never fitted), ours with shuffled
feedback (the negative control: each round's results permuted among its experiments before the loop
learns from them; the true results score it), Ax with its default strategy (the peer a user would
pick instead; `bench_ax`, where Ax is installed and can express the spec), random search (uniform in
the hard limits), and the best answer by dense simulation where the world can compute one
(`World.dense_optimum`). For each: the best safe objective value found, the unsafe experiments spent,
and the wall time. Then the world model of our last round is scored on the random campaign's
experiments (regimens it never chose): 90% interval coverage and CRPS of each readout, against the
mean of the training experiments (a point forecast: its CRPS is its absolute error).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    Observation,
    get_world,
    observed_safe,
    observed_unsafe,
)
from wetloop.lab_adapters import make_lab, wait_for
from wetloop.worldmodel import crps_ensemble, interval_coverage

from .bench_ax import ax_campaign, ax_missing, ax_unsupported
from .configuration import AgentSettings
from .offline import random_value
from .runner import Campaign

__all__ = ["bench_spec", "print_spec_bench"]

Pairs = list[tuple[Intervention, Observation]]


def _best(spec: CampaignSpec, pairs: Pairs) -> float | None:
    values = [
        o.readouts[spec.objective.readout] for _, o in pairs if observed_safe(spec, o) and spec.objective.readout in o.readouts
    ]
    if not values:
        return None
    return float(max(values, key=spec.objective.utility))


def _summary(spec: CampaignSpec, pairs: Pairs, wall_s: float) -> dict[str, Any]:
    return {
        "best_safe": _best(spec, pairs),
        "unsafe": sum(observed_unsafe(spec, o) for _, o in pairs),
        "failed": sum(o.status != "ok" for _, o in pairs),
        "experiments": len(pairs),
        "wall_s": round(wall_s, 1),
    }


def _campaign(spec: CampaignSpec, run_dir: Path, learn: bool = True, shuffle: bool = False) -> tuple[Pairs, Any]:
    """Run the loop on `spec` in `run_dir`; (the true history, the last world model or None)."""
    settings = AgentSettings(learn=learn, shuffle_feedback=shuffle)
    with Campaign.create(spec, run_dir, settings=settings, console=Console(quiet=True)) as c:
        c.run()
        store, cid = c.store, c.campaign_id
        obs = store.observations(cid)
        pairs = [(e.intervention, obs[e.key]) for e in store.experiments(cid) if e.key in obs]
        last = store.latest(cid, "model")
        model = get_world(spec.world).load_model(last.payload["path"], spec) if last else None
    return pairs, model


def random_search(spec: CampaignSpec, cache_dir: Path, seed: int) -> Pairs:
    """The spec's budget of experiments drawn uniformly in the hard limits (categorical and set values at random)."""
    rng = np.random.default_rng([seed, 7])
    wide = [v.model_copy(update={"start": None}) if v.is_numeric else v for v in spec.interventions]
    xs = [Intervention(values={v.name: random_value(v, rng) for v in wide}) for _ in range(spec.budget.experiments)]
    with make_lab(spec, cache_dir=cache_dir) as lab:
        exps = [
            Experiment(campaign_id=f"random-{seed}", round=1 + i // spec.budget.batch, intervention=x, approved_by="bench")
            for i, x in enumerate(xs)
        ]
        observations = wait_for(lab, [lab.submit(e) for e in exps])
    return list(zip(xs, observations))


def calibration(model: Any, spec: CampaignSpec, train: Pairs, test: Pairs) -> dict[str, dict[str, float]]:
    """Per readout the model predicts: 90% coverage and CRPS of `test`, and the CRPS of the training mean."""
    ok = [(x, o) for x, o in test if o.status == "ok"]
    if model is None or not ok:
        return {}
    samples = model.botorch_model().posterior(model.encode([x for x, _ in ok]).unsqueeze(-2)).values[..., 0, :]
    readouts = model.outcome.readouts(samples.transpose(0, 1))  # each (S, n)
    out = {}
    for name, pred in readouts.items():
        if not all(name in o.readouts for _, o in ok) or name.startswith(("below_", "above_", "outside_")):
            continue
        observed = torch.tensor([o.readouts[name] for _, o in ok], dtype=torch.float64)
        seen = [o.readouts[name] for _, o in train if o.status == "ok" and name in o.readouts]
        mean = float(np.mean(seen)) if seen else 0.0
        out[name] = {
            "coverage90": interval_coverage(pred.double(), observed, 0.9),
            "crps": crps_ensemble(pred.double(), observed),
            "crps_train_mean": float((observed - mean).abs().mean()),
        }
    return out


def bench_spec(
    spec: CampaignSpec, seeds: int, work_dir: Path | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every method on `seeds` seeds of `spec` (see the module docstring); figures as a dict."""
    root = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="wetloop-bench-"))
    methods: dict[str, list[dict[str, Any]]] = {
        "ours": [],
        "ours_gp": [],
        "ours_no_learning": [],
        "ours_shuffled_feedback": [],
        "random": [],
    }
    no_ax = ax_missing() or ax_unsupported(spec)
    if no_ax is None:
        methods["ax"] = []
    else:
        log(f"bench {spec.name}: Ax is left out: {no_ax}")
    ax_notes: list[dict[str, Any]] = []
    cal: list[dict[str, Any]] = []
    for seed in range(seeds):
        s = spec.with_overrides(seed=spec.seed + seed)
        t0 = time.perf_counter()
        ours, model = _campaign(s, root / f"ours-{seed}")
        methods["ours"].append(_summary(s, ours, time.perf_counter() - t0))
        t0 = time.perf_counter()
        gp, _ = _campaign(s.with_overrides(world_model="gp"), root / f"gp-{seed}")
        methods["ours_gp"].append(_summary(s, gp, time.perf_counter() - t0))
        t0 = time.perf_counter()
        fixed, _ = _campaign(s, root / f"prior-{seed}", learn=False)
        methods["ours_no_learning"].append(_summary(s, fixed, time.perf_counter() - t0))
        t0 = time.perf_counter()
        shuffled, _ = _campaign(s, root / f"shuffled-{seed}", shuffle=True)
        methods["ours_shuffled_feedback"].append(_summary(s, shuffled, time.perf_counter() - t0))
        t0 = time.perf_counter()
        rand = random_search(s, root / f"random-{seed}", seed)
        methods["random"].append(_summary(s, rand, time.perf_counter() - t0))
        if no_ax is None:
            t0 = time.perf_counter()
            peer, notes = ax_campaign(s, root / f"ax-{seed}", s.seed)
            methods["ax"].append(_summary(s, peer, time.perf_counter() - t0) | notes)
            ax_notes.append(notes)
        cal.append(calibration(model, s, ours, rand))
        log(f"bench {spec.name} seed {seed}: " + ", ".join(f"{m} {v[-1]['best_safe']}" for m, v in methods.items()))
    return {
        "spec": spec.name,
        "world": spec.world,
        "objective": spec.objective.model_dump(),
        "seeds": seeds,
        "budget": spec.budget.experiments,
        "methods": methods,
        "calibration": cal,
        "best_answer": _dense(spec),
        "ax": {"left_out": no_ax}
        if no_ax is not None
        else {"rounds_short_of_the_batch": sum(n["short_rounds"] for n in ax_notes)},
    }


def _dense(spec: CampaignSpec) -> dict[str, Any] | None:
    result = get_world(spec.world).dense_optimum(spec)
    if result is None:
        return None
    return {
        "best_safe": result.best_value,
        "at": result.best_values,
        "start_region_best": result.start_best_value,
        "fraction_unsafe": result.fraction_unsafe,
        "points": result.n,
    }


def _mean_sd(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    return f"{np.mean(got):.3g} ± {np.std(got):.2g}" + (f" ({len(values) - len(got)} none)" if len(got) < len(values) else "")


def print_spec_bench(fig: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"{fig['spec']}: best safe {fig['objective']['readout']} ({fig['objective']['direction']}), "
        f"{fig['seeds']} seeds x {fig['budget']} experiments"
    )
    for col in ("method", "best safe (mean ± sd)", "unsafe experiments (total)", "wall s (mean)"):
        table.add_column(col)
    for name, runs in fig["methods"].items():
        table.add_row(
            name,
            _mean_sd([r["best_safe"] for r in runs]),
            str(sum(r["unsafe"] for r in runs)),
            f"{np.mean([r['wall_s'] for r in runs]):.1f}",
        )
    best = fig.get("best_answer")
    if best:
        table.add_row("best answer (dense simulation)", f"{best['best_safe']:.3g}", "-", "-")
    console.print(table)
    ax = fig.get("ax") or {}
    if "left_out" in ax:
        console.print(f"  Ax left out: {ax['left_out']}")
    elif ax.get("rounds_short_of_the_batch"):
        console.print(
            f"  Ax returned fewer trials than the batch in {ax['rounds_short_of_the_batch']} round(s), after 5 asks each"
        )
    for name in sorted({k for c in fig["calibration"] for k in c}):
        rows = [c[name] for c in fig["calibration"] if name in c]
        console.print(
            f"  {name} on random experiments: 90% coverage {np.mean([r['coverage90'] for r in rows]):.2f}, "
            f"CRPS {np.mean([r['crps'] for r in rows]):.3g} vs training mean {np.mean([r['crps_train_mean'] for r in rows]):.3g}"
        )
