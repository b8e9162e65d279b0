"""`wetloop bench screen`: cumulative hit ratio of our screen campaign against its controls and baselines.

The campaign is the method `wetloop run` uses on a `crispr_screen` spec (offline gene proposer ->
screen world model refit each round -> screen planner -> ScreenLab), driven directly (no LangGraph,
no store) for speed. In the same run and with the same seeds, per screen: our campaign; its two
controls, learning switched off (the knowledge prior ranks every round) and shuffled feedback (the
lab permutes its answers among the genes tested: a method that learns from results must do clearly
worse); random genes, random non-essential genes (what excluding the core-essential genes alone
buys), "essential genes first" (CEGv2 genes first, then random) and the oracle (the hits themselves).
Hit ratio after each round = |tested ∩ hits| / |hits|, over all genes and over non-essential genes
(CEGv2 removed from both sets: the primary figure). From the controls, per screen: the learning gain
(ours / no learning) and the shuffle drop (1 - shuffled / ours), non-essential ratios after the last
round, means over seeds; over all screens, their means and each screen against the others (nothing
is set per screen, so each screen is a held-out one). Hits are read from the screen only to score.
"""

from __future__ import annotations

import os
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

from ._datasets import DATA_FILES
from ._hgnc import Screen, load_essentials, screen_names
from ._lab import ScreenLab, screen_of
from ._model import ScreenWorldModel
from ._planner import ScreenPlanner
from ._proposer import GeneProposer

__all__ = [
    "PUBLISHED",
    "screen_spec",
    "run_campaign",
    "bench_screen",
    "bench_screens",
    "summarise_screens",
    "auto_batch",
    "parse_batches",
    "default_screens",
    "hit_ratios",
]

PUBLISHED = {"IFNG": 0.095, "Carnevale22_Adenosine": 0.042}  # BioDiscoveryAgent, Claude-3.5-Sonnet, all genes, round 5
DEFAULT_BATCH = 128
CONTROLS = ("ours_no_learning", "ours_shuffled_feedback")
LABELS = {
    "ours": "ours",
    "ours_no_learning": "no learning",
    "ours_shuffled_feedback": "shuffled feedback",
    "random": "random",
    "random_non_essential": "random non-essential",
    "essential_first": "essential first",
    "oracle": "oracle",
}
SHORT = {"ours_shuffled_feedback": "shuffled", "random_non_essential": "random non-ess.", "essential_first": "ess. first"}
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


def auto_batch(n_genes: int) -> int:
    """Genes per round when none is given: 128, or a 32nd of the library where that is smaller (a small
    library, e.g. Scharenberg22's 1,053 genes: 32), so that 5 rounds test at most a sixth of it."""
    return max(1, min(DEFAULT_BATCH, n_genes // 32))


def bench_screen(
    screen_name: str,
    data_dir: str | None,
    rounds: int,
    batch: int | None = None,
    seeds: int = 3,
    shuffle: bool = False,
    log: Callable[[str], None] = lambda s: None,
    exclude_essential: bool = True,
    *,
    controls: bool = True,
) -> dict[str, Any]:
    """Every method on one screen for `seeds` seeds; figures as a JSON-able dict. `batch` None: `auto_batch`.
    With `controls` false the two control campaigns (no learning, shuffled feedback) are skipped. With
    `exclude_essential` false our campaign may also test core-essential genes (the ablation of that option).
    With `shuffle` (the former whole-run control, kept for scripts) "ours" itself runs on shuffled feedback."""
    spec0 = screen_spec(screen_name, data_dir, rounds, 1, 0)
    screen, essential = screen_of(spec0), load_essentials()
    genes, hits = list(screen.genes), screen.hits
    batch = batch if batch is not None else auto_batch(len(genes))
    dates = screen.mapping.dates_summary()
    log(
        f"{screen.name}: {len(genes):,} genes, {len(hits):,} hits ({screen.hits_source}), {screen.n_unmapped} symbols "
        f"unmapped, {dates['found']} spreadsheet dates ({dates['mapped']} read back); {seeds} seeds x {rounds} rounds "
        f"x {batch}" + ("" if controls else "; no controls") + ("; ours on shuffled feedback" if shuffle else "")
    )

    def ess_first(rng: np.random.Generator) -> list[str]:
        return [g for g in rng.permutation(genes) if g in essential] + [g for g in rng.permutation(genes) if g not in essential]

    def oracle(rng: np.random.Generator) -> list[str]:
        return [g for g in rng.permutation(genes) if g in hits - essential] + [
            g for g in rng.permutation(genes) if g not in hits - essential
        ]

    non_essential = lambda rng: [g for g in rng.permutation(genes) if g not in essential]  # noqa: E731
    ours_methods = ("ours", *(CONTROLS if controls else ()))
    methods: dict[str, list[dict[str, list[float]]]] = {
        name: [] for name in (*ours_methods, "random", "random_non_essential", "essential_first", "oracle")
    }
    walls = []
    t_screen = time.perf_counter()
    for seed in range(seeds):
        t0 = time.perf_counter()
        spec = screen_spec(screen_name, data_dir, rounds, batch, seed, exclude_essential=exclude_essential)
        ours = screen_spec(screen_name, data_dir, rounds, batch, seed, shuffle, exclude_essential) if shuffle else spec
        methods["ours"].append(hit_ratios(run_campaign(ours, screen), hits, essential))
        walls.append(time.perf_counter() - t0)
        if controls:
            methods["ours_no_learning"].append(hit_ratios(run_campaign(spec, screen, learn=False), hits, essential))
            shuffled = screen_spec(screen_name, data_dir, rounds, batch, seed, True, exclude_essential)
            methods["ours_shuffled_feedback"].append(hit_ratios(run_campaign(shuffled, screen), hits, essential))
        for name, order in (
            ("random", lambda rng: list(rng.permutation(genes))),
            ("random_non_essential", non_essential),
            ("essential_first", ess_first),
            ("oracle", oracle),
        ):
            methods[name].append(hit_ratios(_baseline(order, rounds, batch, seed), hits, essential))
        finals = ", ".join(f"{LABELS[m]} {methods[m][-1]['non_essential'][-1]:.3f}" for m in ours_methods)
        log(f"{screen.name} seed {seed + 1}/{seeds}: {finals} (non-essential, round {rounds}; {time.perf_counter() - t0:.0f} s)")
    fig = _summarise(screen, methods, walls, rounds, batch, seeds) | {
        "shuffle_feedback": shuffle,
        "exclude_core_essential": exclude_essential,
        "seconds": round(time.perf_counter() - t_screen, 1),
    }
    if controls:
        c = fig["controls"]
        log(
            f"{screen.name} done in {fig['seconds']:.0f} s: learning gain {_num(c['learning_gain'])}, "
            f"shuffle drop {_pct(c['shuffle_drop'])}"
        )
    return fig


def _final(fig: dict[str, Any], method: str) -> list[float]:
    return list(fig["methods"][method]["non_essential"]["per_seed_final"])


def _controls(fig: dict[str, Any]) -> dict[str, Any]:
    """Learning gain and shuffle drop (ratios of the seed means) and whether a shuffled seed beats the worst real one."""
    ours, none, shuffled = (np.mean(_final(fig, m)) for m in ("ours", *CONTROLS))
    return {
        "learning_gain": round(float(ours / none), 3) if none > 0 else None,
        "shuffle_drop": round(float(1 - shuffled / ours), 3) if ours > 0 else None,
        "shuffled_beats_worst_real": max(_final(fig, "ours_shuffled_feedback")) > min(_final(fig, "ours")),
    }


def _summarise(screen: Screen, methods: dict, walls: list[float], rounds: int, batch: int, seeds: int) -> dict[str, Any]:
    summary = {}
    for name, runs in methods.items():
        summary[name] = {
            metric: {
                "mean_per_round": np.mean([r[metric] for r in runs], axis=0).round(4).tolist(),
                "per_seed_final": [round(r[metric][-1], 4) for r in runs],
            }
            for metric in ("all", "non_essential")
        }
    fig = {
        "screen": screen.name,
        "genes": len(screen.genes),
        "hits": len(screen.hits),
        "hits_source": screen.hits_source,
        "unmapped_symbols": screen.n_unmapped,
        "spreadsheet_dates": screen.mapping.dates_summary(),
        "rounds": rounds,
        "batch": batch,
        "seeds": seeds,
        "published_bda_claude35_all": PUBLISHED.get(screen.name),
        "methods": summary,
        "seconds_per_seed": round(float(np.mean(walls)), 2),
    }
    if all(m in methods for m in CONTROLS):
        fig["controls"] = _controls(fig)
    return fig


def summarise_screens(figures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Over every screen with controls: mean and worst learning gain, mean shuffle drop, where a shuffled
    seed beats the worst real one; each screen against the mean of the others (leave one screen out);
    and the issue's targets met or not. None without controls."""
    rows = [f for f in figures if "controls" in f]
    if not rows:
        return None
    gains = {f["screen"]: f["controls"]["learning_gain"] for f in rows}
    drops = {f["screen"]: f["controls"]["shuffle_drop"] for f in rows}

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(float(np.mean(known)), 3) if known else None

    beaten = [f["screen"] for f in rows if f["controls"]["shuffled_beats_worst_real"]]
    loso = [
        {
            "held_out": name,
            "learning_gain": gains[name],
            "shuffle_drop": drops[name],
            "others_mean_learning_gain": mean([g for n, g in gains.items() if n != name]),
            "others_mean_shuffle_drop": mean([d for n, d in drops.items() if n != name]),
        }
        for name in gains
    ]
    known_gains = [g for g in gains.values() if g is not None]
    mean_gain, mean_drop = mean(list(gains.values())), mean(list(drops.values()))
    targets = {
        "learning_gain_at_least_1.10_on_every_screen": len(known_gains) == len(rows) and min(known_gains) >= 1.10,
        "mean_learning_gain_at_least_1.25": (mean_gain or 0) >= 1.25,
        "mean_shuffle_drop_at_least_0.15": (mean_drop or 0) >= 0.15,
        "no_shuffled_seed_beats_the_worst_real_seed": not beaten,
    }
    summary = {
        "screens": len(rows),
        "mean_learning_gain": mean_gain,
        "min_learning_gain": min(known_gains) if known_gains else None,
        "mean_shuffle_drop": mean_drop,
        "shuffled_beats_worst_real_on": beaten,
        "leave_one_screen_out": loso,
        "targets": targets,
    }
    return summary


def bench_screens(
    names: list[str],
    data_dir: str | None,
    rounds: int,
    batch: int | None = None,
    seeds: int = 3,
    *,
    batches: dict[str, int] | None = None,
    controls: bool = True,
    log: Callable[[str], None] = lambda s: None,
    exclude_essential: bool = True,
) -> dict[str, Any]:
    """`bench_screen` on every screen (genes per round: `batches[name]`, else `batch`, else `auto_batch`), the
    `summarise_screens` line and the wall time: {"screens": [...], "summary": ..., "seconds": ...}."""
    t0 = time.perf_counter()
    figures = []
    for i, name in enumerate(names):
        log(f"screen {i + 1}/{len(names)}: {name} ({time.perf_counter() - t0:.0f} s so far)")
        size = (batches or {}).get(name, batch)
        figures.append(
            bench_screen(name, data_dir, rounds, size, seeds, log=log, exclude_essential=exclude_essential, controls=controls)
        )
    return {"screens": figures, "summary": summarise_screens(figures), "seconds": round(time.perf_counter() - t0, 1)}


def default_screens(data_dir: str | None) -> list[str]:
    """The screens to bench when none is named: every ground_truth_<name>.csv in `data_dir`, else in
    `$WETLOOP_DATA_DIR` (or their screens/ folder), else the registered screens that can be downloaded."""
    root = data_dir or os.environ.get("WETLOOP_DATA_DIR")
    if root:
        return screen_names(root)
    prefix = "screens/ground_truth_"
    return sorted(f.relpath[len(prefix) : -len(".csv")] for f in DATA_FILES.values() if f.relpath.startswith(prefix) and f.url)


def parse_batches(values: list[str], screens: list[str]) -> tuple[int | None, dict[str, int]]:
    """`--batch` values: `N` (every screen) and `SCREEN=N` (that screen); ValueError saying what is wrong."""
    default: int | None = None
    per_screen: dict[str, int] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        if not number.strip().isdigit() or int(number) < 1:
            raise ValueError(
                f"--batch {value!r}: give a positive number of genes per round, N or SCREEN=N (e.g. Scharenberg22=32)"
            )
        if not name:
            default = int(number)
        elif name not in screens:
            raise ValueError(f"--batch {value!r}: {name!r} is not a benched screen; benched: {', '.join(screens)}")
        else:
            per_screen[name] = int(number)
    return default, per_screen


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_screen_bench(result: dict[str, Any], console: Any) -> None:
    """One row per screen: non-essential hit ratio after the last round (mean of seeds; per-seed range for
    ours), learning gain, shuffle drop; then each screen's data line and the summary over screens."""
    from rich.table import Table

    figures = result["screens"]
    controls = any("controls" in f for f in figures)
    methods = [m for m in LABELS if any(m in f["methods"] for f in figures)]
    table = Table(title="non-essential hit ratio after the last round, mean of seeds (ours: per-seed range)")
    table.add_column("screen", no_wrap=True)
    table.add_column("batch")
    for m in methods:
        table.add_column(SHORT.get(m, LABELS[m]), no_wrap=m == "ours")
    table.add_column("BDA all (ours all)")
    if controls:
        for col in ("learning gain", "shuffle drop", "shuffled > worst"):
            table.add_column(col)
    for f in figures:
        cells = []
        for m in methods:
            seeds = _final(f, m) if m in f["methods"] else []
            spread = f" ({min(seeds):.3f}-{max(seeds):.3f})" if m == "ours" and len(seeds) > 1 else ""
            cells.append(f"{np.mean(seeds):.3f}{spread}" if seeds else "")
        published = f["published_bda_claude35_all"]
        ours_all = np.mean(f["methods"]["ours"]["all"]["per_seed_final"])
        cells.append("" if published is None else f"{published:.3f} ({ours_all:.3f})")
        if "controls" in f:
            c = f["controls"]
            cells += [_num(c["learning_gain"]), _pct(c["shuffle_drop"]), "yes" if c["shuffled_beats_worst_real"] else "no"]
        elif controls:
            cells += ["", "", ""]
        table.add_row(f["screen"], str(f["batch"]), *cells)
    console.print(table)
    for f in figures:
        d = f["spreadsheet_dates"]
        console.print(
            f"{f['screen']}: {f['genes']:,} genes, {f['hits']:,} hits ({f['hits_source']}), {f['seeds']} seeds x "
            f"{f['rounds']} rounds x {f['batch']}; {f['unmapped_symbols']} symbols unmapped; spreadsheet dates "
            f"{d['found']} found, {d['mapped']} read back, {d['left']} left; {f['seconds_per_seed']:.0f} s per seed of ours",
            soft_wrap=True,
        )
    summary = result.get("summary")
    if summary:
        beaten = ", ".join(summary["shuffled_beats_worst_real_on"]) or "none"
        console.print(
            f"over {summary['screens']} screens: learning gain mean {_num(summary['mean_learning_gain'])} "
            f"(worst {_num(summary['min_learning_gain'])}), shuffle drop mean {_pct(summary['mean_shuffle_drop'])}; "
            f"a shuffled seed beats the worst real seed on: {beaten}",
            soft_wrap=True,
        )
        for row in summary["leave_one_screen_out"]:
            console.print(
                f"  held out {row['held_out']}: gain {_num(row['learning_gain'])}, drop {_pct(row['shuffle_drop'])} "
                f"(the others: {_num(row['others_mean_learning_gain'])}, {_pct(row['others_mean_shuffle_drop'])})",
                soft_wrap=True,
            )
        met = [name.replace("_", " ") for name, ok in summary["targets"].items() if ok]
        missed = [name.replace("_", " ") for name, ok in summary["targets"].items() if not ok]
        console.print(f"targets met: {'; '.join(met) or 'none'}; missed: {'; '.join(missed) or 'none'}", soft_wrap=True)
    console.print(f"wall time {result['seconds']:.0f} s", soft_wrap=True)
