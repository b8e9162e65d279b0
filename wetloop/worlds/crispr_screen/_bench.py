"""`wetloop bench screen`: cumulative hit ratio of our screen campaign against baselines, per seed.

The campaign is the method `wetloop run` uses on a `crispr_screen` spec (offline gene proposer ->
screen world model refit each round -> screen planner -> ScreenLab), driven directly (no LangGraph,
no store) for speed. From the same run: our campaign with learning switched off (the knowledge prior
ranks every round), random genes, random non-essential genes (what excluding the core-essential
genes alone buys), "essential genes first" (CEGv2 genes first, then random), and the oracle (the
hits themselves). Hit ratio after each round = |tested ∩ hits| / |hits|, over all genes and over
non-essential genes (CEGv2 removed from both sets: the primary figure). With `shuffle_feedback` the
lab permutes its answers among the genes tested (a control: a method that learns from results must
do clearly worse). Hits are read from the screen only to score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from wetloop.campaign import (
    Budget,
    CampaignSpec,
    Experiment,
    Intervention,
    Objective,
    Observation,
    Proposal,
    ProposalContext,
    Variable,
)
from wetloop.lab_adapters import wait_for

from ._hgnc import Screen, load_essentials
from ._lab import ScreenLab, screen_of
from ._model import ScreenWorldModel
from ._planner import ScreenPlanner
from ._proposer import GeneProposer

__all__ = ["PUBLISHED", "screen_spec", "run_campaign", "bench_screen", "hit_ratios"]

PUBLISHED = {"IFNG": 0.095, "Carnevale22_Adenosine": 0.042}  # BioDiscoveryAgent, Claude-3.5-Sonnet, all genes, round 5
History = list[tuple[Intervention, Observation]]


def screen_spec(
    screen: str, data_dir: str | None, rounds: int, batch: int, seed: int, shuffle: bool = False, exclude_essential: bool = True
) -> CampaignSpec:
    """A screen campaign spec (the same shape as specs/screen_ifng.yaml)."""
    return CampaignSpec(
        name=f"screen-{screen}",
        question=f"Which gene knockouts regulate the phenotype of screen {screen}?",
        world="crispr_screen",
        world_options={
            "screen": screen,
            "data_dir": data_dir,
            "shuffle_feedback": shuffle,
            "exclude_core_essential": exclude_essential,
        },
        objective=Objective(readout="hit"),
        interventions=(Variable(name="gene", kind="categorical"),),
        budget=Budget(rounds=rounds, batch=batch),
        seed=seed,
    )


def run_campaign(spec: CampaignSpec, screen: Screen, learn: bool = True) -> list[list[str]]:
    """Our method for one seed: the genes tested in each round. With `learn` false the world model is
    never refit: every round is ranked by the knowledge prior alone (the ablation of learning)."""
    lab, proposer, planner = ScreenLab(spec, screen=screen), GeneProposer(), ScreenPlanner(spec)
    world, rounds = ScreenWorldModel(spec), []
    history: History = []
    for rnd in range(1, spec.budget.rounds + 1):
        reply = proposer.propose(ProposalContext(spec=spec, round=rnd, history=history, seed=spec.seed))
        proposals = [
            Proposal(intervention=Intervention(values=c.values), hypothesis_id=str(k), source="offline")
            for k, h in enumerate(reply.hypotheses)
            for c in h.candidates
        ]
        ranking = planner.rank(proposals, world, history, rnd)
        genes = [str(r.proposal.intervention.values["gene"]) for r in ranking.selected]
        history += _run(lab, spec, rnd, genes)
        if learn:
            world.fit(history)
        rounds.append(genes)
    return rounds


def _run(lab: ScreenLab, spec: CampaignSpec, rnd: int, genes: list[str]) -> History:
    exps = [
        Experiment(
            campaign_id=f"bench-{spec.seed}", round=rnd, intervention=Intervention(values={"gene": g}), approved_by="policy:bench"
        )
        for g in genes
    ]
    obs = wait_for(lab, [lab.submit(e) for e in exps], poll_s=0.0)
    return [(e.intervention, o) for e, o in zip(exps, obs)]


def _baseline(order: Callable[[np.random.Generator], list[str]], rounds: int, batch: int, seed: int) -> list[list[str]]:
    genes = order(np.random.default_rng([seed, 11]))
    return [genes[r * batch : (r + 1) * batch] for r in range(rounds)]


def hit_ratios(rounds: list[list[str]], hits: frozenset[str], essential: frozenset[str]) -> dict[str, list[float]]:
    """Cumulative hit ratio after each round, all genes and non-essential genes."""
    out: dict[str, list[float]] = {"all": [], "non_essential": []}
    tested: set[str] = set()
    ne_hits = hits - essential
    for genes in rounds:
        tested |= set(genes)
        out["all"].append(len(tested & hits) / len(hits))
        out["non_essential"].append(len((tested - essential) & ne_hits) / len(ne_hits))
    return out


def bench_screen(
    screen_name: str,
    data_dir: str | None,
    rounds: int,
    batch: int,
    seeds: int,
    shuffle: bool,
    log: Callable[[str], None] = lambda s: None,
    exclude_essential: bool = True,
) -> dict[str, Any]:
    """Every method on one screen for `seeds` seeds; figures as a JSON-able dict. With `exclude_essential`
    false our campaign may also test core-essential genes (the ablation of that world option)."""
    spec0 = screen_spec(screen_name, data_dir, rounds, batch, 0, shuffle)
    screen, essential = screen_of(spec0), load_essentials()
    genes, hits = list(screen.genes), screen.hits

    def ess_first(rng: np.random.Generator) -> list[str]:
        return [g for g in rng.permutation(genes) if g in essential] + [g for g in rng.permutation(genes) if g not in essential]

    def oracle(rng: np.random.Generator) -> list[str]:
        return [g for g in rng.permutation(genes) if g in hits - essential] + [
            g for g in rng.permutation(genes) if g not in hits - essential
        ]

    non_essential = lambda rng: [g for g in rng.permutation(genes) if g not in essential]  # noqa: E731
    methods: dict[str, list[dict[str, list[float]]]] = {
        "ours": [],
        "ours_no_learning": [],
        "random": [],
        "random_non_essential": [],
        "essential_first": [],
        "oracle": [],
    }
    walls = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        spec = screen_spec(screen_name, data_dir, rounds, batch, seed, shuffle, exclude_essential)
        ours = run_campaign(spec, screen)
        walls.append(time.perf_counter() - t0)
        methods["ours"].append(hit_ratios(ours, hits, essential))
        methods["ours_no_learning"].append(hit_ratios(run_campaign(spec, screen, learn=False), hits, essential))
        for name, order in (
            ("random", lambda rng: list(rng.permutation(genes))),
            ("random_non_essential", non_essential),
            ("essential_first", ess_first),
            ("oracle", oracle),
        ):
            methods[name].append(hit_ratios(_baseline(order, rounds, batch, seed), hits, essential))
        log(
            f"{screen_name} seed {seed}: non-essential {methods['ours'][-1]['non_essential'][-1]:.3f}, "
            f"all {methods['ours'][-1]['all'][-1]:.3f} ({walls[-1]:.1f} s)"
        )
    return _summarise(screen, methods, walls, shuffle, rounds, batch, seeds) | {"exclude_core_essential": exclude_essential}


def _summarise(
    screen: Screen, methods: dict, walls: list[float], shuffle: bool, rounds: int, batch: int, seeds: int
) -> dict[str, Any]:
    summary = {}
    for name, runs in methods.items():
        summary[name] = {
            metric: {
                "mean_per_round": np.mean([r[metric] for r in runs], axis=0).round(4).tolist(),
                "per_seed_final": [round(r[metric][-1], 4) for r in runs],
            }
            for metric in ("all", "non_essential")
        }
    return {
        "screen": screen.name,
        "genes": len(screen.genes),
        "hits": len(screen.hits),
        "unmapped_symbols": screen.n_unmapped,
        "rounds": rounds,
        "batch": batch,
        "seeds": seeds,
        "shuffle_feedback": shuffle,
        "published_bda_claude35_all": PUBLISHED.get(screen.name),
        "methods": summary,
        "seconds_per_seed": round(float(np.mean(walls)), 2),
    }


def print_screen_bench(figures: list[dict[str, Any]], console: Any) -> None:
    """Per-round mean and per-seed final hit ratios, non-essential (primary) and all genes, per screen."""
    from rich.table import Table

    for fig in figures:
        ctl = (" [shuffled feedback]" if fig["shuffle_feedback"] else "") + (
            "" if fig.get("exclude_core_essential", True) else " [ours may test core-essential genes]"
        )
        table = Table(
            title=f"{fig['screen']}{ctl}: cumulative hit ratio, {fig['seeds']} seeds x {fig['rounds']} rounds x {fig['batch']} "
            f"({fig['hits']} hits, {fig['unmapped_symbols']} symbols unmapped)"
        )
        for col in ("method", "metric", *[f"r{r + 1}" for r in range(fig["rounds"])], "per-seed final"):
            table.add_column(col)
        for name, m in fig["methods"].items():
            for metric in ("non_essential", "all"):
                table.add_row(
                    name,
                    metric,
                    *[f"{v:.3f}" for v in m[metric]["mean_per_round"]],
                    " ".join(f"{v:.3f}" for v in m[metric]["per_seed_final"]),
                )
        if fig["published_bda_claude35_all"] is not None:
            table.add_row(
                "BioDiscoveryAgent (Claude-3.5, published)",
                "all",
                *[""] * (fig["rounds"] - 1),
                f"{fig['published_bda_claude35_all']:.3f}",
                "",
            )
        console.print(table)
