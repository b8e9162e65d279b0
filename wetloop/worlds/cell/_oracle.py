"""Every cocktail of a spec, simulated: the bench's oracle and the world model's held-out truth.

All cocktails run in one vectorised population (chunks of `CHUNK` cells), each with its own cells
drawn as a single experiment draws them, so the fractions have the sampling noise of one experiment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wetloop.campaign import CampaignSpec, Variable

from ._experiment import MODEL, clamp_arrays, fate_shares, start_state
from ._network import load_network
from ._options import FATES, CellOptions

__all__ = ["CHUNK", "CellOracle", "all_cocktails", "cocktail_fractions", "oracle", "population_chunks"]

CHUNK = 20_000
"""Cells stepped together (memory: a few arrays of CHUNK x genes floats)."""


def all_cocktails(var: Variable) -> list[dict[str, str]]:
    """Every value of a set variable: each choice of `min_items` to `max_items` items at each level."""
    items, out = var.items or (), []
    for k in range(var.min_items, var.most_items + 1):
        for genes in itertools.combinations(items, k):
            for levels in itertools.product(var.levels, repeat=k):
                out.append(dict(zip(genes, levels)))
    return out


def population_chunks(
    options: CellOptions, cocktails: Sequence[dict[str, str]], rng: np.random.Generator, cells: int, chunk: int = CHUNK
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """The cocktails in chunks of about `chunk` cells: (first index, cocktails in the chunk, start cells,
    clamp mask, levels), `cells` cells per cocktail drawn as one experiment draws them."""
    net = load_network(MODEL)
    per_chunk = max(1, chunk // cells)
    for lo in range(0, len(cocktails), per_chunk):
        part = cocktails[lo : lo + per_chunk]
        x0 = start_state(options, rng, cells * len(part))
        masks = [clamp_arrays(net, options, c, cells) for c in part]
        yield lo, len(part), x0, np.concatenate([m for m, _ in masks]), np.concatenate([v for _, v in masks])


def cocktail_fractions(
    options: CellOptions, cocktails: list[dict[str, str]], seed: int = 0, cells: int | None = None
) -> np.ndarray:
    """The fate fractions (len(cocktails), len(FATES)) of one population of `cells` per cocktail."""
    net = load_network(MODEL)
    cells = options.cells if cells is None else cells
    out, rng = np.zeros((len(cocktails), len(FATES))), np.random.default_rng([seed, 11])
    for lo, n, x0, clamp, level in population_chunks(options, cocktails, rng, cells):  # rng: start cells, then noise
        final = net.simulate(
            x0, options.steps, options.noise, rng, clamp=clamp, level=level, window=options.window, every=options.steps - 1
        )
        out[lo : lo + n] = fate_shares(final[-1], n, cells, options.threshold)
    return out


@dataclass(frozen=True)
class CellOracle:
    """Every cocktail's simulated fate fractions; the best by target fraction, the cheapest that qualifies.

    `best_value`, `best_values`, `start_best_value`, `fraction_unsafe`, `n` are what `wetloop bench spec`
    reads of any world's dense optimum."""

    cocktails: list[dict[str, str]]
    fractions: np.ndarray
    target: str
    success: float
    variable: str
    best_value: float | None = None
    best_values: dict[str, Any] = field(default_factory=dict)
    start_best_value: float | None = None
    fraction_unsafe: float = 0.0
    n: int = 0

    @property
    def target_fractions(self) -> np.ndarray:
        return self.fractions[:, FATES.index(self.target)]

    @property
    def qualifying(self) -> list[dict[str, str]]:
        """The cocktails whose simulated target fraction reaches `success`, fewest clamps first."""
        hits = [self.cocktails[i] for i in np.flatnonzero(self.target_fractions >= self.success)]
        return sorted(hits, key=len)


def oracle(spec: CampaignSpec, options: CellOptions, seed: int = 0, cells: int | None = None) -> CellOracle:
    """Simulate every cocktail of the spec's set variable (see `cocktail_fractions`)."""
    var = spec.interventions[0]
    cocktails = all_cocktails(var)
    fractions = cocktail_fractions(options, cocktails, seed, cells)
    target = fractions[:, FATES.index(options.target)]
    best = int(np.argmax(target - 1e-9 * np.array([len(c) for c in cocktails])))  # ties: fewer clamps
    return CellOracle(
        cocktails=cocktails,
        fractions=fractions,
        target=options.target,
        success=options.success,
        variable=var.name,
        best_value=float(target[best]),
        best_values={var.name: cocktails[best]},
        n=len(cocktails),
    )
