"""`wetloop bench cell`: does the loop find a qualifying cocktail within budget, and at what cost?

Per target fate and seed, with the spec's budget: ours (the campaign as the spec says), its two controls
in the same run (`ours_no_learning`: no model is ever fitted, so every round is the planner's
space-filling first round; `ours_shuffled`: each round's results permuted among its experiments before
the loop learns from them), the GP baseline on the same cocktail encoding (`ours_gp`: the same loop
with `world_model: gp`, learning from the fate shares alone), and random search (cocktails drawn
uniformly from every cocktail of the spec, without repeats). The oracle simulates every cocktail once (nothing is cached):
how many qualify (target fraction >= `success`), the fewest clamps any needs, and what random search
would find in expectation. Per method: the share of seeds that found a qualifying cocktail, the
experiments and the cost up to the first one (and until found or, if never, the whole budget's cost), the total cost, and the wasted experiments (a target
fraction no higher than the untreated cells') and unsafe ones (the spec's safety limits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Observation, observed_unsafe
from wetloop.lab_adapters import wait_for

from ._options import FATES, CellOptions
from ._oracle import all_cocktails, cocktail_fractions, oracle

__all__ = ["METHODS", "bench_cell", "print_cell_bench", "run_summary"]

Pairs = list[tuple[Intervention, Observation]]


def run_summary(spec: CampaignSpec, options: CellOptions, pairs: Pairs, untreated: float, wall_s: float) -> dict[str, Any]:
    """Found / first success / cost figures of one run's experiments, in the order they ran."""
    readout, spent, first, first_cost = spec.objective.readout, 0.0, None, None
    wasted = unsafe = 0
    for i, (x, o) in enumerate(pairs, start=1):
        spent += spec.cost_of(dict(x.values))
        value = o.readouts.get(readout) if o.status == "ok" else None
        unsafe += observed_unsafe(spec, o)
        wasted += value is None or value <= untreated
        if first is None and value is not None and value >= options.success:
            first, first_cost = i, spent
    return {
        "found": first is not None,
        "first": first,
        "cost_to_first": first_cost,
        "cost_until_done": first_cost if first_cost is not None else spent,
        "cost": spent,
        "wasted": wasted,
        "unsafe": unsafe,
        "experiments": len(pairs),
        "wall_s": round(wall_s, 1),
    }


METHODS = ("ours", "ours_no_learning", "ours_shuffled", "ours_gp", "random")
"""Every method `bench_cell` knows, in the order it runs them."""

CONTROLS = {"ours_no_learning": {"learn": False}, "ours_shuffled": {"shuffle_feedback": True}}


def _campaign(create: Callable[..., Any], spec: CampaignSpec, run_dir: Path, **settings: bool) -> Pairs:
    with create(spec, run_dir, **settings) as c:
        c.run()
        obs = c.store.observations(c.campaign_id)
        exps = sorted(c.store.experiments(c.campaign_id), key=lambda e: e.round)
        return [(e.intervention, obs[e.key]) for e in exps if e.key in obs]


def random_search(spec: CampaignSpec, seed: int, lab: Any) -> Pairs:
    """The spec's budget of cocktails drawn uniformly from every cocktail, without repeats, run through `lab`."""
    var = spec.interventions[0]
    space = all_cocktails(var)
    rng = np.random.default_rng([seed, 13])
    picks = rng.choice(len(space), size=min(spec.budget.experiments, len(space)), replace=False)
    xs = [Intervention(values={var.name: space[i]}) for i in picks]
    with lab:
        exps = [
            Experiment(campaign_id=f"random-{seed}", round=1 + i // spec.budget.batch, intervention=x, approved_by="bench")
            for i, x in enumerate(xs)
        ]
        return list(zip(xs, wait_for(lab, [lab.submit(e) for e in exps])))


def random_expectation(n: int, hits: int, draws: int) -> float:
    """P(at least one of `hits` among `draws` drawn without repeats from `n`)."""
    if hits == 0:
        return 0.0
    return 1.0 - math.comb(n - hits, draws) / math.comb(n, draws) if draws <= n - hits else 1.0


def bench_cell(
    spec: CampaignSpec,
    seeds: int,
    targets: list[str],
    work_dir: Path,
    create: Callable[..., Any],
    make_lab: Callable[[CampaignSpec], Any],
    log: Callable[[str], None] = print,
    methods: tuple[str, ...] = METHODS,
    oracle_cells: int | None = None,
) -> dict[str, Any]:
    """Every method on `seeds` seeds for each target fate (see the module docstring); figures as a dict."""
    out: dict[str, Any] = {"spec": spec.name, "seeds": seeds, "budget": spec.budget.experiments, "targets": {}}
    for target in targets:
        s = spec.with_overrides(name=f"{spec.name}-{target}", world_options={**spec.world_options, "target": target})
        options = CellOptions.model_validate(s.world_options)
        t0 = time.perf_counter()
        orc = oracle(s, options, cells=oracle_cells)
        untreated = float(cocktail_fractions(options, [{}], seed=1)[0, FATES.index(target)])
        qualifying = orc.qualifying
        fig: dict[str, Any] = {
            "oracle": {
                "cocktails": orc.n,
                "cells": oracle_cells or options.cells,
                "qualifying": len(qualifying),
                "share": round(len(qualifying) / orc.n, 4),
                "fewest_clamps": len(qualifying[0]) if qualifying else None,
                "cheapest": [s.interventions[0].describe(c) for c in qualifying if len(c) == len(qualifying[0])]
                if qualifying
                else [],
                "best": orc.best_value,
                "untreated": untreated,
                "random_found_expected": round(random_expectation(orc.n, len(qualifying), s.budget.experiments), 3),
                "wall_s": round(time.perf_counter() - t0, 1),
            },
            "methods": {m: [] for m in methods},
        }
        log(f"bench cell {target}: {len(qualifying)} of {orc.n} cocktails qualify (untreated {untreated:.2f})")
        for seed in range(seeds):
            run = s.with_overrides(seed=s.seed + seed)
            for method in methods:
                t0 = time.perf_counter()
                if method == "random":
                    pairs = random_search(run, run.seed, make_lab(run))
                else:
                    variant = run.with_overrides(world_model="gp") if method == "ours_gp" else run
                    pairs = _campaign(create, variant, work_dir / f"{target}-{method}-{seed}", **CONTROLS.get(method, {}))
                fig["methods"][method].append(run_summary(run, options, pairs, untreated, time.perf_counter() - t0))
            log(
                f"bench cell {target} seed {seed}: " + ", ".join(f"{m} first {v[-1]['first']}" for m, v in fig["methods"].items())
            )
        out["targets"][target] = fig
    return out


def _mean(values: list[Any]) -> str:
    got = [v for v in values if v is not None]
    return f"{np.mean(got):.3g}" if got else "-"


def print_cell_bench(fig: dict[str, Any], console: Console) -> None:
    for target, t in fig["targets"].items():
        o = t["oracle"]
        table = Table(
            title=f"{fig['spec']} -> {target}: {fig['seeds']} seeds x {fig['budget']} experiments; oracle: {o['qualifying']} of "
            f"{o['cocktails']} cocktails qualify ({100 * o['share']:.1f}%), fewest clamps {o['fewest_clamps']}, untreated {o['untreated']:.2f}"
        )
        for col in (
            "method",
            "found",
            "experiments to first (mean)",
            "cost to first (mean)",
            "cost until found, else all (mean)",
            "cost (mean)",
            "wasted (total)",
            "unsafe (total)",
        ):
            table.add_column(col)
        for name, runs in t["methods"].items():
            table.add_row(
                name,
                f"{sum(r['found'] for r in runs)}/{len(runs)}",
                _mean([r["first"] for r in runs]),
                _mean([r["cost_to_first"] for r in runs]),
                _mean([r["cost_until_done"] for r in runs]),
                _mean([r["cost"] for r in runs]),
                str(sum(r["wasted"] for r in runs)),
                str(sum(r["unsafe"] for r in runs)),
            )
        table.add_row("random (expected)", f"{o['random_found_expected']:.2f}", *["-"] * 6)
        console.print(table)
        console.print(f"  cheapest qualifying cocktails: {', '.join(o['cheapest']) or 'none'}")
