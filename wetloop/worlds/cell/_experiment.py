"""One experiment: a population of cells treated with a cocktail of clamped genes, as AnnData.

A cocktail maps genes to `ko` (held at 0) or `oe` (held at `CellOptions.overexpression`) during the
options' window; the cells start as progenitors or as committed wild-type cells, run `steps` Euler
steps of the network with dynamic noise, and each cell's fate is read off its marker genes at the end.
The result is an `AnnData` (cells x genes: the final state in `X`, `fate` in `obs`, each cell's time
course in `obsm["time_course"]` (cells x times x genes), the times and the cocktail in `uns`) that
scanpy reads directly, and the lab's numbers are read off it (`lab_result`).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ._network import Network, load_network
from ._options import FATES, MARKERS, CellOptions

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "LEVELS",
    "MODEL",
    "fate_fractions",
    "fate_shares",
    "fates_of",
    "lab_result",
    "progenitor_state",
    "recorded_steps",
    "run_experiment",
]

MODEL = "krumsiek11"
"""The scanpy model file this world runs (`scanpy/sim_models/krumsiek11.txt`)."""

LEVELS = ("ko", "oe")
"""A clamp's levels: knocked out (held at 0) or overexpressed (held at `CellOptions.overexpression`)."""

PROGENITOR = {"Gata2": 0.8, "Pu.1": 0.8, "Cebpa": 0.8}
"""The progenitor state scanpy's `sim` starts the model from (every other gene at 0), jittered by 0.001."""

POOL = 2000
"""Committed wild-type cells grown once per process; each experiment draws its cells from them."""


def progenitor_state(net: Network, n: int, rng: np.random.Generator) -> np.ndarray:
    """n progenitor cells, as `scanpy.tools._sim.sample_dynamic_data` starts this model."""
    x0 = np.zeros(net.dim)
    for gene, value in PROGENITOR.items():
        x0[net.index(gene)] = value
    return x0 + 0.001 * rng.standard_normal((n, net.dim))


@cache
def _committed_pool(steps: int, noise: float) -> np.ndarray:
    """POOL wild-type cells after `steps` from the progenitor state (seed 0: one fixed culture)."""
    net = load_network(MODEL)
    rng = np.random.default_rng(0)
    return net.simulate(progenitor_state(net, POOL, rng), steps + 1, noise, rng, every=steps)[-1]


def start_state(options: CellOptions, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """`n` (default `options.cells`) starting cells (n, genes): progenitors, or committed cells drawn from the pool."""
    net = load_network(MODEL)
    n = options.cells if n is None else n
    if options.start == "progenitor":
        return progenitor_state(net, n, rng)
    pool = _committed_pool(options.committed_steps, options.noise)
    return pool[rng.choice(len(pool), size=n, replace=n > len(pool))]


def fates_of(net: Network, states: np.ndarray, threshold: float) -> np.ndarray:
    """Each cell's fate (an index into FATES) from its marker genes; undecided when none or several match."""
    on = states > threshold
    match = np.stack(
        [
            np.all([on[:, net.index(g)] for g in up], axis=0) & ~np.any([on[:, net.index(g)] for g in down], axis=0)
            for up, down in MARKERS.values()
        ],
        axis=1,
    )
    return np.where(match.sum(1) == 1, match.argmax(1), len(FATES) - 1)


def fate_shares(final: np.ndarray, n: int, cells: int, threshold: float) -> np.ndarray:
    """The fate shares (n, len(FATES)) of n populations of `cells` cells, from their final states (n * cells, genes)."""
    fates = fates_of(load_network(MODEL), final, threshold).reshape(n, cells)
    return np.stack([(fates == f).mean(1) for f in range(len(FATES))], axis=1)


def recorded_steps(options: CellOptions) -> list[int]:
    """The steps at which an experiment records its time course: every `record_every`, and the last step."""
    recorded = list(range(0, options.steps, options.record_every))
    if recorded[-1] != options.steps - 1:
        recorded.append(options.steps - 1)
    return recorded


def fate_fractions(fates: np.ndarray) -> dict[str, float]:
    counts = np.bincount(fates, minlength=len(FATES))
    return {name: float(c) / max(len(fates), 1) for name, c in zip(FATES, counts)}


def clamp_arrays(net: Network, options: CellOptions, cocktail: dict[str, str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The clamp mask and levels (n, genes) of a cocktail (KeyError / ValueError naming what is wrong)."""
    clamp, level = np.zeros((n, net.dim), dtype=bool), np.zeros((n, net.dim))
    for gene, how in cocktail.items():
        if how not in LEVELS:
            raise ValueError(f"clamp {gene}={how!r}: the level must be one of {list(LEVELS)}")
        i = net.index(gene)
        clamp[:, i] = True
        level[:, i] = options.overexpression if how == "oe" else 0.0
    return clamp, level


def run_experiment(options: CellOptions, cocktail: dict[str, str], seed: int) -> AnnData:
    """Treat `options.cells` cells with `cocktail` (gene -> ko / oe) and return the population as AnnData."""
    import anndata as ad
    import pandas as pd

    net = load_network(MODEL)
    rng = np.random.default_rng(seed)
    x0 = start_state(options, rng)
    clamp, level = clamp_arrays(net, options, cocktail, len(x0))
    course = net.simulate(x0, options.steps, options.noise, rng, clamp=clamp, level=level, window=options.window)
    recorded = recorded_steps(options)
    final = course[-1]
    fates = fates_of(net, final, options.threshold)
    adata = ad.AnnData(
        X=final.astype(np.float32),
        obs=pd.DataFrame(
            {"fate": pd.Categorical([FATES[f] for f in fates], categories=list(FATES))},
            index=[f"cell{i}" for i in range(len(final))],
        ),
        var=pd.DataFrame(index=list(net.genes)),
    )
    adata.obsm["time_course"] = np.ascontiguousarray(course[recorded].transpose(1, 0, 2)).astype(np.float32)
    adata.uns["times"] = np.array(recorded, dtype=float) * net.inv_time_step
    adata.uns["cocktail"] = {gene: how for gene, how in sorted(cocktail.items())}
    adata.uns["fractions"] = fate_fractions(fates)
    adata.uns["seed"] = seed
    adata.uns["options"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.model_dump().items()}
    return adata


def lab_result(options: CellOptions, adata: AnnData) -> dict[str, Any]:
    """What the lab reports for an experiment: mean expression of each gene over time and the fate fractions."""
    course = np.asarray(adata.obsm["time_course"], dtype=float)  # (cells, times, genes)
    mean = course.mean(axis=0)
    fractions = dict(adata.uns["fractions"])
    readouts = {f"fraction_{name}": fractions[name] for name in FATES}
    readouts["target_fraction"] = fractions[options.target]
    return {
        "times_min": [float(t) for t in adata.uns["times"]],
        "series": {gene: mean[:, j].tolist() for j, gene in enumerate(adata.var_names)},
        "readouts": readouts,
    }
