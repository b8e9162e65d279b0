"""`wetloop bench patient`: every method's regimen scored on days it never saw, across patients and seeds.

For each patient (its start region scaled from body weight when the spec says `start_region:
body_weight`) and each seed, from one run with the same budget:
1. our campaign (offline proposer, autonomous review); with `controls`, the same campaign without
   learning (its prior every round, no model fitted) and with shuffled feedback (each round's days
   permuted among its regimens before the loop learns from them);
2. random search (uniform in the hard-limit box, log-scaled where the spec says so);
3. Ax (default generation strategy, the safety limits as outcome constraints), when installed.
4. with `population` and more than one patient, ours from a population prior: the same campaign whose
   world model is fitted, from its first round on, on the transitions exported from our campaigns on
   the OTHER patients of the run (same seed), pooled with its own days.
Each method then hands over one regimen, the one it would give the patient: ours (and the shuffled
control) the tried regimen its final world model predicts best over the days it imagines, among
those it predicts safe; Ax its own model-based pick of the best tried parameters; random search and
the no-learning control the best safe day they observed. Every pick is scored on the same held-out
days (seeds no campaign draws), beside simglucose's basal-bolus controller with the patient's true
parameters on those days (the reference, never shown to a campaign): mean time in range, time
below 70 and 54 mg/dL, days below 54. Also: unsafe days spent during each campaign, wall time, the
world model's calibration on the random campaign's days, and model rollout speed vs the simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich import box
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Experiment, Intervention, Observation, get_world, observed_safe, observed_unsafe
from wetloop.lab_adapters import make_lab, wait_for

from ._calibration import calibration_report
from ._days import held_out_seeds
from ._lab import days_of
from ._model import TrajectoryWorldModel

CampaignFactory = Callable[..., Any]
"""Starts a campaign of the loop in a run directory, `create(spec, run_dir, learn=..., shuffle_feedback=...)`
(`CliTools.create`, injected: a world never imports the agent). The object runs with `run()` and
exposes `store`, `campaign_id`; a context manager."""

AxRunner = Callable[[CampaignSpec, Path, int], tuple[list[tuple[Intervention, Observation]], dict[str, Any]]]
"""`CliTools.ax`: the spec's budget run by Ax; (pairs, notes with "recommended")."""

__all__ = ["bench_patient", "print_bench", "random_search", "model_pick"]

Pairs = list[tuple[Intervention, Observation]]
METHODS = ("ours", "ours_population_prior", "no_learning", "shuffled_feedback", "random", "ax")
REACH = 0.8  # "days to reach": the first day with at least this time in range


def random_search(spec: CampaignSpec, cache_dir: Path, seed: int) -> tuple[Pairs, float]:
    """Same budget, batches run in parallel by the same lab; returns the pairs and the wall time."""
    rng = np.random.default_rng(seed)
    pairs: Pairs = []
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


def best_observed(spec: CampaignSpec, pairs: Pairs) -> Intervention | None:
    """The regimen of the best safe day observed (None when no day was safe)."""
    readout = spec.objective.readout
    safe = [(x, o) for x, o in pairs if observed_safe(spec, o) and readout in o.readouts]
    best = max(safe, key=lambda p: spec.objective.utility(p[1].readouts[readout]), default=None)
    return None if best is None else best[0]


def model_pick(model: TrajectoryWorldModel, spec: CampaignSpec, tried: Sequence[Intervention]) -> Intervention | None:
    """The tried regimen the model predicts best on average over the days it imagines, among those
    whose predicted chance of crossing each safety limit is within the limit's `max_probability`."""
    unique = list({x.key: x for x in tried}.values())
    if not unique:
        return None
    samples = model.sample(unique).double()  # (n, S, T)
    utility = model.outcome.utility(samples).mean(-1)  # (n,)
    ok = torch.ones(len(unique), dtype=torch.bool)
    for limit in model.outcome.limits:
        ok &= model.outcome.p_unsafe(samples)[limit.name] <= limit.max_probability
    if not bool(ok.any()):
        return None
    return unique[int(torch.where(ok, utility, torch.full_like(utility, -torch.inf)).argmax())]


def _held_out(spec: CampaignSpec, regimen: Intervention | None, seeds: list[int], cache_dir: Path) -> dict[str, Any] | None:
    """A regimen (the reference controller when None) on the held-out days."""
    days = days_of(spec, regimen, seeds, cache_dir=cache_dir)
    ok = [o for o in days if o.status == "ok" and o.trajectory is not None]
    if not ok:
        return None
    glucose = [np.asarray(o.trajectory.series["glucose"]) for o in ok]  # type: ignore[union-attr]
    tir = np.array([o.readouts[spec.objective.readout] for o in ok])
    return {
        "days": len(ok),
        "failed": len(days) - len(ok),
        "time_in_range": round(float(tir.mean()), 4),
        "time_in_range_sd": round(float(tir.std()), 4),
        "time_below_70": round(float(np.mean([(g < 70).mean() for g in glucose])), 4),
        "time_below_54": round(float(np.mean([(g < 54).mean() for g in glucose])), 4),
        "days_below_54": int(sum(bool((g < 54).any()) for g in glucose)),
    }


def _loop(spec: CampaignSpec, run_dir: Path, create: CampaignFactory, **control: bool) -> tuple[Pairs, float, Any]:
    """One campaign of the loop: its (regimen, day) pairs, wall time and last model record (or None)."""
    t0 = time.perf_counter()
    with create(spec, run_dir, **control) as c:
        c.run()
        observed = c.store.observations(c.campaign_id)
        pairs = [(e.intervention, observed[e.key]) for e in c.store.experiments(c.campaign_id) if e.key in observed]
        last_model = c.store.latest(c.campaign_id, "model")  # fitted on every day the campaign observed
    return pairs, time.perf_counter() - t0, last_model


def _days_to_reach(spec: CampaignSpec, pairs: Pairs) -> int | None:
    """1-based index of the first day whose time in range reaches `REACH` (None: never)."""
    readout = spec.objective.readout
    return next((i + 1 for i, (_, o) in enumerate(pairs) if o.readouts.get(readout, -1.0) >= REACH), None)


def _method(spec: CampaignSpec, pairs: Pairs, wall_s: float, pick: Intervention | None, how: str) -> dict[str, Any]:
    return {
        "experiments": len(pairs),
        "days_to_reach": _days_to_reach(spec, pairs),
        "unsafe_days": int(sum(observed_unsafe(spec, o) for _, o in pairs)),
        "wall_s": round(wall_s, 1),
        "pick": how,
        "recommended": None if pick is None else dict(pick.values),
    }


def _loop_method(
    spec: CampaignSpec, run_dir: Path, create: CampaignFactory, **control: Any
) -> tuple[dict[str, Any], Intervention | None, TrajectoryWorldModel | None]:
    """A campaign of the loop, summarised, with its pick: its final model's, else its best safe day."""
    pairs, wall, last_model = _loop(spec, run_dir, create, **control)
    model = TrajectoryWorldModel.load(last_model.payload["path"], spec) if last_model is not None else None
    pick = model_pick(model, spec, [x for x, _ in pairs]) if model is not None else None
    how = "world model" if pick is not None else "best safe day"
    pick = pick or best_observed(spec, pairs)
    return _method(spec, pairs, wall, pick, how), pick, model


def _campaigns(
    spec: CampaignSpec, work: Path, create: CampaignFactory, ax: AxRunner | None, controls: bool, console: Console
) -> tuple[dict[str, dict[str, Any]], dict[str, Intervention | None], Any]:
    """Every method's campaign for one patient and seed: summaries, picks, and calibration of our model."""
    runs: dict[str, dict[str, Any]] = {}
    picks: dict[str, Intervention | None] = {}
    loops: list[tuple[str, str, dict[str, bool]]] = [("ours", "ours", {})]
    if controls:
        loops += [("no_learning", "no-learning", {"learn": False}), ("shuffled_feedback", "shuffled", {"shuffle_feedback": True})]
    ours_model: TrajectoryWorldModel | None = None
    random_pairs: Pairs = []
    for name, folder, control in loops:
        console.print(f"  {name.replace('_', ' ')}")
        runs[name], picks[name], model = _loop_method(spec, work / folder, create, **control)
        ours_model = model if name == "ours" else ours_model
    console.print("  random search")
    random_pairs, wall = random_search(spec, work / "random-lab", spec.seed)
    picks["random"] = best_observed(spec, random_pairs)
    runs["random"] = _method(spec, random_pairs, wall, picks["random"], "best safe day")
    if ax is not None:
        console.print("  Ax")
        t0 = time.perf_counter()
        ax_pairs, notes = ax(spec, work / "ax-lab", spec.seed)
        rec = notes.get("recommended")
        picks["ax"] = Intervention(values=rec) if rec else best_observed(spec, ax_pairs)
        runs["ax"] = _method(spec, ax_pairs, time.perf_counter() - t0, picks["ax"], "Ax model" if rec else "best safe day")
        runs["ax"]["short_rounds"] = notes.get("short_rounds", 0)
    calibration = calibration_report(ours_model, random_pairs).model_dump() if ours_model is not None else None
    return runs, picks, calibration


def bench_patient(
    spec: CampaignSpec,
    work_dir: Path,
    create: CampaignFactory,
    *,
    ax: AxRunner | None = None,
    patients: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    held_out: int = 20,
    controls: bool = True,
    export: Callable[[Path, Path], Path] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); figures as JSON-ready data."""
    console = console or Console(stderr=True)
    work_dir = Path(work_dir)
    patients = list(patients or [str(spec.world_options["patient"])])
    seeds = list(seeds if seeds is not None else [spec.seed])
    day_seeds = held_out_seeds(held_out)
    out: dict[str, Any] = {
        "spec": spec.name,
        "budget": f"{spec.budget.rounds} rounds x {spec.budget.batch}",
        "held_out_days": held_out,
        "days_vary": spec.world_options.get("days") is not None,
        "patients": {},
    }
    where: dict[tuple[str, str], tuple[CampaignSpec, Path]] = {}  # (patient, seed) -> the spec and folder it ran with
    for patient in patients:
        pspec = spec.with_overrides(world_options={**spec.world_options, "patient": patient})
        cache = work_dir / "held-out-lab"
        console.print(f"[bold]{patient}[/]: the reference controller on {held_out} held-out days")
        entry: dict[str, Any] = {"reference": _held_out(pspec, None, day_seeds, cache), "seeds": {}}
        for seed in seeds:
            s = pspec.with_overrides(seed=seed)
            s = get_world(s.world).validate_spec(s)  # the start region the campaigns run with
            console.print(f"[bold]{patient}, seed {seed}[/]: campaigns")
            work = work_dir / f"{patient.replace('#', '-')}-seed{seed}"
            runs, picks, calibration = _campaigns(s, work, create, ax, controls, console)
            console.print(f"[bold]{patient}, seed {seed}[/]: every pick on the {held_out} held-out days")
            for name, pick in picks.items():
                runs[name]["held_out"] = _held_out(s, pick, day_seeds, cache) if pick is not None else None
            entry["seeds"][str(seed)] = {"methods": runs, "calibration_held_out": calibration}
            where[patient, str(seed)] = (s, work)
        out["patients"][patient] = entry
    if export is not None and len(patients) > 1:
        _population_pass(out, where, create, export, day_seeds, work_dir / "held-out-lab", console)
    out["summary"] = summarise(out)
    return out


def _population_pass(
    out: dict[str, Any],
    where: dict[tuple[str, str], tuple[CampaignSpec, Path]],
    create: CampaignFactory,
    export: Callable[[Path, Path], Path],
    day_seeds: list[int],
    cache: Path,
    console: Console,
) -> None:
    """Ours from a population prior, for each patient and seed: pooled with our campaigns on the others."""
    patients = list(out["patients"])
    for patient in patients:
        for seed, run in out["patients"][patient]["seeds"].items():
            s, work = where[patient, seed]
            others = [where[o, seed][1] for o in patients if o != patient]
            prior = [str(export(theirs / "ours", theirs / "export")) for theirs in others]
            console.print(
                f"[bold]{patient}, seed {seed}[/]: ours from a population prior ({len(prior)} other patients' campaigns)"
            )
            summary, pick, _ = _loop_method(s, work / "population-prior", create, prior=tuple(prior))
            summary["held_out"] = _held_out(s, pick, day_seeds, cache) if pick is not None else None
            summary["prior_patients"] = [o for o in patients if o != patient]
            run["methods"]["ours_population_prior"] = summary


def summarise(fig: dict[str, Any]) -> dict[str, Any]:
    """Per method over every patient and seed: mean (sd, min) held-out time in range, gap to the
    reference, unsafe days during campaigns, and on how many runs it beat Ax and random search."""
    rows: dict[str, dict[str, Any]] = {}
    gaps: dict[str, list[float]] = {}
    for entry in fig["patients"].values():
        ref = (entry["reference"] or {}).get("time_in_range")
        for run in entry["seeds"].values():
            methods = run["methods"]
            for name, m in methods.items():
                row = rows.setdefault(name, {"tir": [], "unsafe_campaign": 0, "held_out_days_below_54": 0, "beats": 0, "runs": 0})
                tir = (m.get("held_out") or {}).get("time_in_range")
                row["tir"].append(np.nan if tir is None else tir)
                row["unsafe_campaign"] += m["unsafe_days"]
                row["held_out_days_below_54"] += (m.get("held_out") or {}).get("days_below_54", 0)
                others = [
                    (methods[o].get("held_out") or {}).get("time_in_range")
                    for o in ("random", "ax")
                    if o in methods and o != name
                ]
                row["runs"] += 1
                row["beats"] += tir is not None and all(v is None or tir > v for v in others)
                if ref is not None and tir is not None:
                    gaps.setdefault(name, []).append(tir - ref)
    summary = {}
    for name, row in rows.items():
        tir = np.array(row.pop("tir"), dtype=float)
        summary[name] = {
            **row,
            "mean_time_in_range": None if np.isnan(tir).all() else round(float(np.nanmean(tir)), 4),
            "sd": None if np.isnan(tir).all() else round(float(np.nanstd(tir)), 4),
            "min": None if np.isnan(tir).all() else round(float(np.nanmin(tir)), 4),
            "gap_to_reference": round(float(np.mean(gaps[name])), 4) if gaps.get(name) else None,
        }
    refs = [e["reference"]["time_in_range"] for e in fig["patients"].values() if e["reference"]]
    summary["reference"] = {"mean_time_in_range": round(float(np.mean(refs)), 4) if refs else None}
    return summary


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_bench(fig: dict[str, Any], console: Console) -> None:
    held = fig["held_out_days"]
    for patient, entry in fig["patients"].items():
        ref = entry["reference"] or {}
        for seed, run in entry["seeds"].items():
            t = Table(title=f"{patient}, seed {seed}: {fig['budget']}, scored on {held} held-out days", box=box.SIMPLE_HEAD)
            for header in (
                "method",
                "held-out TIR",
                "sd",
                "time <70",
                "time <54",
                "days <54",
                "campaign unsafe days",
                f"days to {REACH:g}",
                "wall s",
            ):
                t.add_column(header, justify="right" if header != "method" else "left", no_wrap=True)
            t.add_column("pick", ratio=1)
            for name in METHODS:
                if name not in run["methods"]:
                    continue
                m = run["methods"][name]
                h = m.get("held_out") or {}
                t.add_row(
                    name.replace("_", " "),
                    _fmt(h.get("time_in_range")),
                    _fmt(h.get("time_in_range_sd")),
                    _fmt(h.get("time_below_70")),
                    _fmt(h.get("time_below_54")),
                    str(h.get("days_below_54", "-")),
                    f"{m['unsafe_days']} of {m['experiments']}",
                    str(m.get("days_to_reach") or "-"),
                    f"{m['wall_s']:.0f}",
                    m["pick"],
                )
            t.add_row(
                "reference",
                _fmt(ref.get("time_in_range")),
                _fmt(ref.get("time_in_range_sd")),
                _fmt(ref.get("time_below_70")),
                _fmt(ref.get("time_below_54")),
                str(ref.get("days_below_54", "-")),
                "-",
                "-",
                "-",
                "basal-bolus, true parameters",
            )
            console.print(t)
            cal = run.get("calibration_held_out")
            if cal:
                console.print(
                    f"calibration on the random campaign's {cal['n_days']} days: one-step CRPS {cal['one_step_crps']:.2f} mg/dL "
                    f"vs persistence {cal['persistence_mae']:.2f}; {cal['level']:.0%} coverage one-step "
                    f"{cal['one_step_coverage']:.2f}, open-loop {cal['open_loop_coverage']:.2f}",
                    soft_wrap=True,
                )
    s = Table(title="summary over patients and seeds (held-out time in range)", box=box.SIMPLE_HEAD)
    for header in (
        "method",
        "mean",
        "sd",
        "min",
        "vs reference",
        "beats random and Ax",
        "campaign unsafe days",
        "held-out days <54",
    ):
        s.add_column(header, justify="right" if header != "method" else "left", no_wrap=True)
    for name in METHODS:
        row = fig["summary"].get(name)
        if row is None:
            continue
        s.add_row(
            name.replace("_", " "),
            _fmt(row["mean_time_in_range"]),
            _fmt(row["sd"]),
            _fmt(row["min"]),
            "-" if row["gap_to_reference"] is None else f"{row['gap_to_reference']:+.3f}",
            f"{row['beats']} of {row['runs']}" if name not in ("random", "ax") else "-",
            str(row["unsafe_campaign"]),
            str(row["held_out_days_below_54"]),
        )
    s.add_row("reference", _fmt(fig["summary"]["reference"]["mean_time_in_range"]), "", "", "", "", "-", "")
    console.print(s)
