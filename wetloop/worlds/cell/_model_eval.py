"""World models of the cocktail outcome on held-out cocktails: every fate's share and each gene's mean trajectory.

Per repeat: `test` cocktails drawn at random and held out, each simulated once (one population of the
options' cells, so the truth carries one experiment's sampling noise; a second simulation of them
measures that noise, which no model beats on average), and a pool of other cocktails simulated once
for training; a train size of k takes the empty cocktail (the untreated cells) and the pool's first
k - 1, so the sizes of one repeat are nested and share their held-out cocktails. Every simulated
population keeps each cell's time course at `points` of the lab's recorded times (what the lab's
AnnData holds in `obsm["time_course"]`).

Models of every output: the learned dynamics the campaign ships (`CellDynamicsModel`, `world_model:
series`; it learns from every recorded time, as it would from the lab's AnnData, and its samples are
each member's shares plus one experiment's sampling noise), flow matching (`FlowModel`), the additive
baseline (untreated + single-clamp effects, `AdditiveOutcome`) and the training mean (`MeanOutcome`). Models of the target share only
(what the campaign's objective reads): the generic scalar GP and ensemble over the set variable's
encoding (what `world_model: gp | ensemble` fit) and the parts model (single and pairwise effects).
Scores: mean absolute error of the predicted shares (each model's point prediction: the members'
mean, the posterior mean, the training mean) over every fate and of the target's alone, 90% interval
coverage of the shares (each model's predictive samples), CRPS of the target share, and the RMSE of
each gene's predicted mean trajectory (over the time points and genes, averaged over cocktails); the
seconds each model took to fit and predict.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Intervention, Observation, get_world
from wetloop.worldmodel import crps_ensemble, interval_coverage

from ._baselines import AdditiveOutcome, MeanOutcome
from ._experiment import MODEL, fate_shares, recorded_steps
from ._flow import FlowConfig, FlowModel, as_shares, experiment_draws, time_points
from ._network import load_network
from ._options import FATES, CellOptions
from ._oracle import all_cocktails, population_chunks
from ._parts import PartsModel

__all__ = [
    "FULL_MODELS",
    "MODELS",
    "check_sizes",
    "compare_models",
    "model_steps",
    "print_model_comparison",
    "simulate_populations",
]

FULL_MODELS = ("dynamics", "flow", "additive", "mean")
"""Models of every fate's share and every gene's mean trajectory."""
MODELS = (*FULL_MODELS, "gp", "ensemble", "parts")
CHUNK_CELLS = 5000
"""Cells stepped together while every step is kept (memory: steps x CHUNK_CELLS x genes floats)."""
SHARE_DRAWS = 8
"""Simulated experiments per flow member in its share samples."""


def model_steps(options: CellOptions, points: int) -> list[int]:
    """The steps of `points` evenly spaced times among those the lab records (first and last included)."""
    recorded = recorded_steps(options)
    return [recorded[i] for i in time_points(len(recorded), points)]


def simulate_populations(
    options: CellOptions, cocktails: Sequence[dict[str, str]], seed: int | Sequence[int], points: int
) -> tuple[np.ndarray, np.ndarray]:
    """One experiment's population per cocktail, as the lab runs it: each cell's time course at
    `model_steps(options, points)` (cocktails, cells, points, genes) and the fate shares (cocktails, fates)."""
    net = load_network(MODEL)
    rng = np.random.default_rng(seed)
    keep, cells = model_steps(options, points), options.cells
    courses = np.zeros((len(cocktails), cells, len(keep), net.dim), dtype=np.float32)
    shares = np.zeros((len(cocktails), len(FATES)))
    for lo, n, x0, clamp, level in population_chunks(options, cocktails, rng, cells, CHUNK_CELLS):
        run = net.simulate(x0, options.steps, options.noise, rng, clamp=clamp, level=level, window=options.window)[keep]
        courses[lo : lo + n] = run.transpose(1, 0, 2).reshape(n, cells, len(keep), net.dim)
        shares[lo : lo + n] = fate_shares(run[-1], n, cells, options.threshold)
    return courses, shares


def _generic(kind: str, spec: CampaignSpec, train: list[dict[str, str]], y: np.ndarray, test: list[dict[str, str]]) -> np.ndarray:
    """(S, n_test) samples of the target fraction from the generic scalar model of `kind`."""
    world, var = get_world("cell"), spec.interventions[0].name
    model = world.new_model(spec.with_overrides(world_model=kind))
    history = [
        (Intervention(values={var: c}), Observation(experiment_key=f"k{i}", status="ok", readouts={"target_fraction": float(v)}))
        for i, (c, v) in enumerate(zip(train, y))
    ]
    model.fit(history)
    xs = model.encode([Intervention(values={var: c}) for c in test])
    with torch.no_grad():
        samples = model.botorch_model().posterior(xs.unsqueeze(-2)).values[..., 0, :]
        pred = model.outcome.readouts(samples.transpose(0, 1))["target_fraction"]
    return pred.double().numpy()


@dataclass(frozen=True)
class _Prediction:
    """A model's predicted shares of the held-out cocktails: `point` (n, fates), its best guess, and
    `samples` (S, n, fates), its predictive distribution, with `trajectory` (n, points, genes); or, for a
    model of the target alone, `point` (n,) and `samples` (S, n) of the target share and no trajectory."""

    point: np.ndarray
    samples: np.ndarray
    trajectory: np.ndarray | None = None


def _dynamics(
    spec: CampaignSpec,
    options: CellOptions,
    flow: FlowConfig,
    train: list[dict[str, str]],
    recorded: np.ndarray,
    test: list[dict[str, str]],
) -> _Prediction:
    """The learned dynamics fitted on every recorded time of the training populations; shares of the
    options' cells per member, with one experiment's sampling noise drawn around each."""
    from ._dynamics import CellDynamicsModel

    model = CellDynamicsModel(spec, options)
    model.fit_courses(train, list(recorded), recorded_steps(options))
    shares = model.fractions(test, cells=options.cells, seed=flow.seed)  # (M, n, F)
    _, traj = model.trajectories(test, cells=options.cells, seed=flow.seed, steps=model_steps(options, flow.points))
    draws = experiment_draws(shares, SHARE_DRAWS, options.cells, seed=flow.seed)
    return _Prediction(shares.mean(0), draws, traj.mean(0))


def _predict(
    name: str,
    spec: CampaignSpec,
    options: CellOptions,
    flow: FlowConfig,
    train: list[dict[str, str]],
    courses: np.ndarray,
    shares: np.ndarray,
    test: list[dict[str, str]],
    recorded: np.ndarray | None = None,
) -> _Prediction:
    var, target = spec.interventions[0], FATES.index(options.target)
    if name == "dynamics":
        assert recorded is not None, "the dynamics model learns from every recorded time"
        return _dynamics(spec, options, flow, train, recorded, test)
    if name in ("gp", "ensemble", "parts"):
        y = shares[:, target]
        samples = (
            _generic(name, spec, train, y, test)
            if name != "parts"
            else PartsModel(var.items or (), var.levels).fit(train, y).samples(test)
        )
        return _Prediction(samples.mean(0), samples)
    if name == "flow":
        model = FlowModel(var.items or (), var.levels, load_network(MODEL), options.threshold, flow).fit(train, list(courses))
        pred = model.predict(test)
        samples = pred.share_samples(SHARE_DRAWS, options.cells, seed=flow.seed)
        return _Prediction(pred.shares.mean(0), samples, pred.trajectories.mean(0))
    means = courses.mean(1)  # (n, points, genes)
    y = np.hstack([shares, means.reshape(len(train), -1)])
    if name == "additive":
        additive = AdditiveOutcome(var.items or (), var.levels).fit(train, y)
        samples, point = additive.samples(test), additive.predict(test)
    else:
        samples = MeanOutcome().fit(train, y).samples(test)
        point = samples.mean(0)
    trajectory = np.clip(point[:, len(FATES) :], 0.0, None).reshape(len(test), *means.shape[1:])
    return _Prediction(as_shares(point[:, : len(FATES)]), as_shares(samples[..., : len(FATES)]), trajectory)


def _scores(pred: _Prediction, truth: np.ndarray, truth_traj: np.ndarray, target: int) -> dict[str, float | None]:
    """Errors of the point prediction, coverage and CRPS of the samples, RMSE of the mean trajectories."""
    full = pred.samples.ndim == 3
    target_samples = pred.samples[..., target] if full else pred.samples
    target_point = pred.point[:, target] if full else pred.point
    s_t, y_t = torch.from_numpy(np.asarray(target_samples, dtype=float)), torch.from_numpy(truth[:, target])
    single = pred.samples.shape[0] == 1
    out: dict[str, float | None] = {
        "target_mae": float(np.mean(np.abs(target_point - truth[:, target]))),
        "target_coverage90": None if single else interval_coverage(s_t, y_t, 0.9),
        "crps": crps_ensemble(s_t, y_t),
        "fate_mae": None,
        "coverage90": None,
        "traj_rmse": None,
    }
    if full:
        out["fate_mae"] = float(np.mean(np.abs(pred.point - truth)))
        flat = torch.from_numpy(pred.samples.reshape(len(pred.samples), -1).astype(float))
        out["coverage90"] = None if single else interval_coverage(flat, torch.from_numpy(truth.reshape(-1)), 0.9)
    if pred.trajectory is not None:
        out["traj_rmse"] = float(np.mean(np.sqrt(np.mean((pred.trajectory - truth_traj) ** 2, axis=(1, 2)))))
    return out


def _replicate(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], target: int) -> dict[str, float]:
    """How two simulations of the same cocktails differ: shares (all fates, the target) and mean trajectories."""
    (c1, s1), (c2, s2) = first, second
    return {
        "fate_mae": float(np.mean(np.abs(s1 - s2))),
        "target_mae": float(np.mean(np.abs(s1[:, target] - s2[:, target]))),
        "traj_rmse": float(np.mean(np.sqrt(np.mean((c1.mean(1) - c2.mean(1)) ** 2, axis=(1, 2))))),
    }


def _average(rows: Sequence[dict[str, float | None]] | Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Each score's mean over rows (None where the model does not predict it)."""
    return {k: None if rows[0][k] is None else float(np.mean([r[k] or 0.0 for r in rows])) for k in rows[0]}


def check_sizes(spec: CampaignSpec, train_sizes: Sequence[int], test: int) -> list[dict[str, str]]:
    """The spec's non-empty cocktails, once sure the held-out ones and the largest training set fit in them."""
    space = [c for c in all_cocktails(spec.interventions[0]) if c]
    if not train_sizes or min(train_sizes) < 2 or test < 1 or test + max(train_sizes) - 1 > len(space):
        raise ValueError(
            f"the spec has {len(space)} non-empty cocktails: the held-out ones ({test}) and the largest training set "
            f"less the empty cocktail ({max(train_sizes, default=0) - 1}) must fit in them, every training size at least 2"
        )
    return space


def compare_models(
    spec: CampaignSpec,
    train_sizes: list[int],
    test: int,
    repeats: int,
    models: Sequence[str] = MODELS,
    seed: int = 0,
    flow: FlowConfig | None = None,
) -> dict[str, Any]:
    """Scores per train size and model, averaged over repeats, with the sampling-noise floor."""
    flow = flow or FlowConfig()
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose among {list(MODELS)}")
    options = CellOptions.model_validate(spec.world_options)
    target = FATES.index(options.target)
    space = check_sizes(spec, train_sizes, test)
    pool = max(train_sizes) - 1
    out: dict[str, Any] = {
        "spec": spec.name,
        "target": options.target,
        "test": test,
        "repeats": repeats,
        "cells": options.cells,
        "time_points": model_steps(options, flow.points),
        "flow": {"members": flow.members, "steps": flow.steps, "hidden": flow.hidden, "ode_steps": flow.ode_steps},
        "sizes": {},
    }
    per: dict[int, dict[str, list[dict[str, float | None]]]] = {k: {m: [] for m in models} for k in train_sizes}
    replicate: list[dict[str, float]] = []
    for r in range(repeats):
        order = np.random.default_rng([seed, r]).permutation(len(space))
        held = [space[i] for i in order[:test]]
        train_all = [{}] + [space[i] for i in order[test : test + pool]]
        every = recorded_steps(options)
        recorded, shares = simulate_populations(options, train_all, [seed, r, 1], len(every))
        courses = recorded[:, :, np.searchsorted(every, model_steps(options, flow.points))]
        truth = simulate_populations(options, held, [seed, r, 2], flow.points)
        replicate.append(_replicate(truth, simulate_populations(options, held, [seed, r, 3], flow.points), target))
        truth_traj = truth[0].mean(1)
        for size in train_sizes:
            for m in models:
                start = time.perf_counter()
                cfg = replace(flow, seed=flow.seed + r)
                pred = _predict(m, spec, options, cfg, train_all[:size], courses[:size], shares[:size], held, recorded[:size])
                seconds = time.perf_counter() - start
                per[size][m].append({**_scores(pred, truth[1], truth_traj, target), "seconds": seconds})
    rep = _average(replicate)
    for size in train_sizes:
        out["sizes"][size] = {
            "replicate": rep,
            # one simulation's error against its expectation: a replicate's difference / sqrt(2)
            "floor": {k: v / np.sqrt(2) for k, v in rep.items() if v is not None},
            "models": {m: _average(v) for m, v in per[size].items()},
        }
    return out


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_model_comparison(fig: dict[str, Any], console: Console) -> None:
    cols = [
        ("fate_mae", "share MAE (all fates)"),
        ("target_mae", "target MAE"),
        ("coverage90", "90% cov. (all)"),
        ("target_coverage90", "90% cov. (target)"),
        ("crps", "CRPS (target)"),
        ("traj_rmse", "trajectory RMSE"),
    ]
    for size, row in fig["sizes"].items():
        table = Table(
            title=f"{fig['spec']}: {len(FATES)} fate shares ({fig['target']} the target) and {len(fig['time_points'])}-point "
            f"mean trajectories of {fig['test']} held-out cocktails after {size} seen ({fig['repeats']} splits, "
            f"{fig['cells']} cells each)"
        )
        for col in ["model", *(c for _, c in cols), "seconds (fit, predict)"]:
            table.add_column(col)
        for m, s in row["models"].items():
            table.add_row(m, *(_fmt(s[k]) for k, _ in cols), _fmt(s["seconds"], 1))
        rep, floor = row["replicate"], row["floor"]
        table.add_row("two simulations", *(_fmt(rep.get(k)) for k, _ in cols), "")
        table.add_row("floor (replicate / sqrt 2)", *(_fmt(floor.get(k)) for k, _ in cols), "")
        console.print(table)
