"""`wetloop bench worldmodel`: a world's model on held-out experiments, dimension by dimension, beside
simple baselines from the same run.

Data: `train + test` distinct interventions of the world's example spec (or a given spec), drawn
uniformly in its hard limits (or as the world says, `World.bench_interventions`), run by the world's own
lab (its simulator, or its played-back data: the ground truth), then shuffled into a training set and a
held-out set, so that no held-out intervention is seen in training. The world's model (`World.new_model`
with its light settings; `families` picks generic families) is fitted on the training set, and its
samples of the held-out experiments (`World.forecast`) are scored beside three baselines fitted on the
same training set:

    persistence    the state at the intervention's start held to the end (readouts computed from it)
    training mean  the mean of the training experiments, whatever the intervention
    additive       `worldmodel.AdditiveModel`: an intercept plus each variable's own effect, no interaction

on the seven dimensions of `_bench_dimensions` (each printed with its definition; "n/a" with the reason
where one does not apply to the world or the predictor).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
    SpecError,
    get_world,
    unsafe_readout_name,
)
from wetloop.lab_adapters import make_lab, wait_for
from wetloop.worldmodel import AdditiveModel, OutcomeSamples, series_readout

from ._bench_dimensions import DIMENSIONS, HeldOut, Predictor, definitions, score
from .offline import random_value

__all__ = ["bench_worldmodel", "print_worldmodel_bench"]

Pairs = list[tuple[Intervention, Observation]]
BASELINES = ("persistence", "training mean", "additive")
ADDITIVE_SAMPLES = 64


# -- the data ---------------------------------------------------------------------------------------
def draw_interventions(world: Any, spec: CampaignSpec, n: int, rng: np.random.Generator) -> list[Intervention]:
    """`n` distinct interventions: the world's own draw, else uniform in the hard limits."""
    own = world.bench_interventions(spec, n, rng)
    if own is not None:
        return list(own)
    wide = [v.model_copy(update={"start": None}) if v.is_numeric else v for v in spec.interventions]
    drawn: dict[str, Intervention] = {}
    for _ in range(50 * n):
        x = Intervention(values={v.name: random_value(v, rng) for v in wide})
        drawn.setdefault(x.key(), x)
        if len(drawn) == n:
            return list(drawn.values())
    raise SpecError(f"spec {spec.name!r} has fewer than {n} distinct interventions to draw; ask for fewer experiments")


def run_experiments(spec: CampaignSpec, xs: Sequence[Intervention], cache_dir: Path | None) -> list[Observation]:
    """The lab's result of each intervention, in order."""
    with make_lab(spec, cache_dir=cache_dir) as lab:
        exps = [Experiment(campaign_id=f"bench-worldmodel-{spec.seed}", round=1, intervention=x, approved_by="bench") for x in xs]
        return wait_for(lab, [lab.submit(e) for e in exps])


def usable(world: Any, spec: CampaignSpec, pairs: Pairs) -> tuple[Pairs, list[str]]:
    """The 'ok' results that hold every series the world reports, and why each other one was left out."""
    names = [s.name for s in world.series(spec)]
    kept, dropped = [], []
    for x, o in pairs:
        lacks = [n for n in names if o.trajectory is None or n not in o.trajectory.series]
        if o.status != "ok" or lacks:
            dropped.append((o.message or f"status {o.status}") if o.status != "ok" else f"no series {lacks}")
        else:
            kept.append((x, o))
    return kept, dropped


def held_out(
    world: Any, spec: CampaignSpec, train: Pairs, test: Pairs, grid: np.ndarray | None, models: Sequence[Predictor]
) -> HeldOut:
    """The split as arrays, on `grid` (the models' time grid; None: the first training result's)."""
    series = tuple(s.name for s in world.series(spec))
    if series and grid is None:
        grid = np.asarray(train[0][1].trajectory.times_min, dtype=float)  # type: ignore[union-attr]
    grid = np.zeros(0) if grid is None else grid
    readouts = tuple(sorted(set.intersection(*(set(o.readouts) for _, o in train + test))))
    events = {unsafe_readout_name(limit) for limit in spec.safety}
    predicts_series = any(p.samples is not None and p.samples.series for p in models)
    realism = () if predicts_series else tuple(r for r in readouts if r not in events and all(_has(p, r) for p in models))
    return HeldOut(
        spec=spec,
        train=train,
        test=test,
        series=series,
        grid=grid,
        train_series=_series_array(train, series, grid),
        test_series=_series_array(test, series, grid),
        readouts=readouts,
        train_readouts=np.array([[o.readouts[r] for r in readouts] for _, o in train]),
        test_readouts=np.array([[o.readouts[r] for r in readouts] for _, o in test]),
        constraints=tuple(world.constraints(spec)),
        realism_readouts=realism,
    )


def _has(p: Predictor, readout: str) -> bool:
    return p.samples is not None and readout in p.samples.readouts


def _series_array(pairs: Pairs, series: tuple[str, ...], grid: np.ndarray) -> np.ndarray:
    """(n, T, s): each result's series interpolated onto the grid."""
    out = np.zeros((len(pairs), len(grid), len(series)))
    for i, (_, o) in enumerate(pairs):
        traj = o.trajectory
        for j, name in enumerate(series):
            assert traj is not None  # `usable` kept results with every series
            out[i, :, j] = np.interp(grid, np.asarray(traj.times_min, dtype=float), np.asarray(traj.series[name], dtype=float))
    return out


# -- the predictors -----------------------------------------------------------------------------------
def model_label(model: Any) -> str:
    kind = getattr(model, "kind", None)
    return type(model).__name__ + (f" ({kind})" if isinstance(kind, str) else "")


def new_models(world: Any, spec: CampaignSpec, families: Sequence[str]) -> list[Any]:
    """An unfitted model per family (the spec's own when `families` is empty); SpecError when two
    families give the same model (a world with its own model family ignores the family)."""
    models: list[Any] = []
    seen: dict[str, str] = {}
    for family in families or [spec.world_model]:
        model = world.new_model(spec.with_overrides(world_model=family), world.light_model_config())
        label = model_label(model)
        if label in seen:
            raise SpecError(
                f"world {spec.world!r} builds the same model ({label}) for --model {seen[label]} and --model {family}; "
                "it has its own model family, so leave out --model"
            )
        seen[label] = family
        models.append(model)
    return models


def persistence(world: Any, spec: CampaignSpec, data: HeldOut) -> Predictor:
    """Each series held at its value when the intervention starts (`World.intervention_start_min`); the
    readouts a series computes, computed from that."""
    label = BASELINES[0]
    if not data.series:
        return Predictor(label, None, point=True, why={"all": "the experiments report no time course: no state to hold"})
    held = data.test_series.copy()
    for i, (x, _) in enumerate(data.test):
        begins = data.grid[0] + world.intervention_start_min(spec, x)
        k = max(0, int(np.searchsorted(data.grid, begins, side="right")) - 1)
        held[i, k:] = held[i, k]
    series = {s: torch.as_tensor(held[None, :, :, j]) for j, s in enumerate(data.series)}
    grid = torch.as_tensor(data.grid)
    readouts = {
        r.name: series_readout(r, grid, series[r.series]) for r in world.readouts(spec) if r.series and r.series in series
    }
    why = {r: f"the lab reports {r} itself, not from a time course: nothing to hold" for r in data.readouts if r not in readouts}
    return Predictor(label, OutcomeSamples(readouts, series, tuple(data.grid)), point=True, why=why)


def training_mean(data: HeldOut) -> Predictor:
    n = len(data.test)
    readouts = {r: torch.as_tensor(data.train_readouts[:, j].mean()).expand(1, n) for j, r in enumerate(data.readouts)}
    mean = data.train_series.mean(0)  # (T, s)
    series = {s: torch.as_tensor(mean[:, j]).expand(1, n, -1) for j, s in enumerate(data.series)}
    return Predictor(BASELINES[1], OutcomeSamples(readouts, series, tuple(data.grid)), point=True)


def additive(spec: CampaignSpec, data: HeldOut) -> Predictor:
    label = BASELINES[2]
    if why := AdditiveModel.not_applicable(spec):
        return Predictor(label, None, why={"all": why})
    n_train, (t, s) = len(data.train), data.train_series.shape[1:]
    y = np.hstack([data.train_series.transpose(0, 2, 1).reshape(n_train, s * t), data.train_readouts])
    model = AdditiveModel(spec).fit([x for x, _ in data.train], y)
    draws = torch.as_tensor(model.sample([x for x, _ in data.test], ADDITIVE_SAMPLES, seed=spec.seed))  # (S, n, s T + R)
    series = {name: draws[..., j * t : (j + 1) * t] for j, name in enumerate(data.series)}
    readouts = {r: draws[..., s * t + j] for j, r in enumerate(data.readouts)}
    return Predictor(label, OutcomeSamples(readouts, series, tuple(data.grid)))


# -- the bench ---------------------------------------------------------------------------------------
def bench_worldmodel(
    spec: CampaignSpec,
    families: Sequence[str] = (),
    n_train: int = 32,
    n_test: int = 16,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One world's figures (see the module docstring) on `spec`, seeded by `spec.seed`."""
    world = get_world(spec.world)
    world.validate_spec(spec)
    models = new_models(world, spec, families)
    start = time.perf_counter()
    rng = np.random.default_rng([spec.seed, 13])
    xs = draw_interventions(world, spec, n_train + n_test, rng)
    log(f"bench worldmodel {spec.world}: running {len(xs)} experiments of {spec.name}")
    pairs, dropped = usable(world, spec, list(zip(xs, run_experiments(spec, xs, cache_dir))))
    lab_s = time.perf_counter() - start
    if len(pairs) < 4:
        raise SpecError(f"only {len(pairs)} of {len(xs)} experiments gave a usable result ({'; '.join(dropped[:3])})")
    order = rng.permutation(len(pairs))
    cut = min(n_train, len(pairs) - 2) if len(pairs) < n_train + n_test else n_train
    train, test = [pairs[i] for i in order[:cut]], [pairs[i] for i in order[cut:]]
    fitted, fit_s = [], {}
    for model in models:
        t0 = time.perf_counter()
        model.fit(train)
        samples = world.forecast(model, spec, [x for x, _ in test])
        label = model_label(model)
        fit_s[label] = round(time.perf_counter() - t0, 2)
        why = {"series": f"{label} predicts end-point readouts, not a time course"} if not samples.series else {}
        fitted.append(Predictor(label, samples, why=why))
        log(f"bench worldmodel {spec.world}: {label} fitted on {len(train)} experiments in {fit_s[label]:.1f} s")
    grid = next((np.asarray(p.samples.times_min, dtype=float) for p in fitted if p.samples and p.samples.series), None)
    data = held_out(world, spec, train, test, grid, fitted)
    predictors = [*fitted, persistence(world, spec, data), training_mean(data), additive(spec, data)]
    return {
        "world": spec.world,
        "spec": spec.name,
        "objective": spec.objective.model_dump(),
        "seed": spec.seed,
        "experiments": {"train": len(train), "held_out": len(test), "unusable": len(dropped)},
        "models": [p.label for p in fitted],
        "predictors": [p.label for p in predictors],
        "definitions": definitions(data),
        "dimensions": score(data, predictors),
        "wall_s": {"lab": round(lab_s, 1), "fit": fit_s, "total": round(time.perf_counter() - start, 1)},
    }


def print_worldmodel_bench(fig: dict[str, Any], console: Console) -> None:
    """One table per world: a row per dimension, its definition beside the figures; n/a reasons as notes."""
    for world in fig["worlds"]:
        console.print(_table(world))


def _table(fig: dict[str, Any]) -> Table:
    exp, objective = fig["experiments"], fig["objective"]
    table = Table(
        title=f"{fig['world']} ({fig['spec']}): {exp['held_out']} held-out experiments after {exp['train']} seen; "
        f"objective {objective['readout']} ({objective['direction']})",
        show_lines=True,
    )
    table.add_column("dimension", no_wrap=True)
    table.add_column("definition", ratio=3, min_width=30)
    for label in fig["predictors"]:
        table.add_column(label, ratio=1, min_width=10)
    notes: list[str] = []
    for name in DIMENSIONS:
        cells = [_cell(fig["dimensions"][name][label], notes) for label in fig["predictors"]]
        table.add_row(name, fig["definitions"][name], *cells)
    wall = fig["wall_s"]
    fits = ", ".join(f"{k} {v:g} s" for k, v in wall["fit"].items())
    caption = [f"[{i + 1}] {note}" for i, note in enumerate(notes)]
    caption.append(f"wall time: {wall['total']:g} s (lab {wall['lab']:g} s; fit and forecast: {fits})")
    table.caption, table.caption_justify = "\n".join(caption), "left"
    return table


def _cell(cell: dict[str, Any], notes: list[str]) -> str:
    if "na" not in cell:
        return str(cell["text"])
    if cell["na"] not in notes:
        notes.append(cell["na"])
    return f"n/a [{notes.index(cell['na']) + 1}]"
