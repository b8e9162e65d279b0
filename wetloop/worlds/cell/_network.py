"""The gene regulatory network of the world, read with scanpy's own parser, and a stepper for many cells at once.

scanpy's `GRNsim` reads a model file of `scanpy/sim_models` (boolean update rules plus a coupling list)
and turns each rule into its true rows: a gene's synthesis is the sum, over the parent states for which
its rule holds, of the product of Hill activations (`x^2 / (x^2 + k^2)`) and inhibitions
(`k^2 / (x^2 + k^2)`), with `k = 0.1 / |coupling|`. One Euler step is
`x <- x + invTimeStep * (synthesis - x) + noise * N(0, 1)`. `GRNsim.sim_model` steps one cell at a time
in a Python loop; `Network.simulate` steps a whole population with the same arithmetic, vectorised
over cells, and lets genes be clamped (held at a level) during a window of steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["Network", "load_network"]


@dataclass(frozen=True)
class Network:
    """The equations of one scanpy model file, as arrays.

    `edge_child`, `edge_parent`, `edge_k2`: each (child, parent) coupling with its squared Hill
    threshold; `term_child` and `term_edges` (T, P): each true row of a child's rule, as indices into
    the stacked factors `[activations (E), inhibitions (E), ones]` (padded with the ones column).
    """

    model: str
    genes: tuple[str, ...]
    rules: dict[str, str]
    inv_time_step: float
    edge_child: np.ndarray
    edge_parent: np.ndarray
    edge_k2: np.ndarray
    term_child: np.ndarray
    term_edges: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.genes)

    def index(self, gene: str) -> int:
        try:
            return self.genes.index(gene)
        except ValueError:
            raise KeyError(f"{gene!r} is not a gene of model {self.model!r}; its genes: {list(self.genes)}") from None

    def drift(self, xt: np.ndarray) -> np.ndarray:
        """`invTimeStep * (synthesis - x)` for states `xt` (dim, n), one column per cell: scanpy's
        `Xdiff_hill` for n cells at once, with the same operations in the same order."""
        x2 = np.power(xt, 2)[self.edge_parent]  # (E, n)
        k2 = self.edge_k2[:, None]
        factors = np.concatenate([x2 / (x2 + k2), k2 / (x2 + k2), np.ones((1, xt.shape[1]))])
        terms = factors[self.term_edges]  # (T, P, n)
        prod = terms[:, 0]
        for j in range(1, terms.shape[1]):  # left to right, as scanpy multiplies
            prod = prod * terms[:, j]
        synthesis = np.zeros_like(xt)
        for t, child in enumerate(self.term_child):  # row by row, as scanpy sums
            synthesis[child] += prod[t]
        return self.inv_time_step * (synthesis - xt)

    def simulate(
        self,
        x0: np.ndarray,
        steps: int,
        noise: float,
        rng: np.random.Generator | None = None,
        *,
        normals: np.ndarray | None = None,
        clamp: np.ndarray | None = None,
        level: np.ndarray | None = None,
        window: tuple[int, int] | None = None,
        every: int = 1,
    ) -> np.ndarray:
        """States of n cells from `x0` (n, dim) at steps 0, every, 2*every, ... (shape (T, n, dim)).

        Step 0 is `x0` plus noise and step t is step t-1 plus the drift plus noise, as in
        `GRNsim.sim_model`. The noise is `noise * normals`, with `normals` (steps, n, dim) given (to
        replay a known draw) or drawn from `rng` one step at a time. Where `clamp` (n, dim) is True, the
        gene is set to `level` (n, dim) after each step inside `window` (start, stop) (default: every
        step), so it holds that level exactly while the window is open and is free afterwards.
        """
        x0 = np.atleast_2d(np.asarray(x0, dtype=float))
        n = x0.shape[0]
        if normals is None and rng is None:
            raise ValueError("give rng (a numpy Generator) or normals (steps, n, dim) for the dynamic noise")
        if normals is not None and normals.shape != (steps, n, self.dim):
            raise ValueError(f"normals must have shape {(steps, n, self.dim)}, got {normals.shape}")
        if clamp is not None and (level is None or clamp.shape != (n, self.dim) or level.shape != (n, self.dim)):
            raise ValueError(f"clamp and level must both have shape {(n, self.dim)}")
        lo, hi = window if window is not None else (0, steps)
        held = None if clamp is None else (np.ascontiguousarray(clamp.T), np.ascontiguousarray(level.T))  # type: ignore[union-attr]
        xt = x0.T.copy()
        out = np.empty(((steps - 1) // every + 1, n, self.dim))
        for t in range(steps):
            if t > 0:
                xt = xt + self.drift(xt)
            eps = normals[t].T if normals is not None else rng.standard_normal((self.dim, n))  # type: ignore[union-attr]
            xt += noise * eps
            if held is not None and lo <= t < hi:
                np.copyto(xt, held[1], where=held[0])
            if t % every == 0:
                out[t // every] = xt.T
        return out


@cache
def load_network(model: str = "krumsiek11") -> Network:
    """The network of `scanpy/sim_models/<model>.txt`, parsed by scanpy's `GRNsim` (never a copy of the file)."""
    from scanpy import sim_models
    from scanpy.tools._sim import GRNsim

    if not (Path(sim_models.__file__).parent / f"{model}.txt").is_file():
        known = sorted(p.stem for p in Path(sim_models.__file__).parent.glob("*.txt") if not p.stem.endswith("_params"))
        raise ValueError(f"scanpy ships no model {model!r}; its models: {known}")
    state = np.random.get_state()  # GRNsim seeds numpy's global generator: leave it as it was
    try:
        sim = GRNsim(dim=0, model=model, params={"seed": 0})
    finally:
        np.random.set_state(state)
    if sim.modelType != "hill":
        raise ValueError(f"model {model!r} is of type {sim.modelType!r}; only Hill-kinetics models are supported")
    genes = tuple(sim.varNames)
    edges: dict[tuple[int, int], int] = {}
    for child in genes:
        for parent in sim.pas[child]:
            edges[(sim.varNames[child], sim.varNames[parent])] = len(edges)
    n_edges = len(edges)
    child_idx = np.array([c for c, _ in edges], dtype=int)
    parent_idx = np.array([p for _, p in edges], dtype=int)
    k2 = np.array([(0.1 / abs(sim.Coupl[c, p])) ** 2 for c, p in edges])
    width = max((len(sim.pas[g]) for g in genes), default=1)
    rows, children = [], []
    for child in genes:
        c = sim.varNames[child]
        for row in sim.boolCoeff[child] if sim.pas[child] else ():
            cols = [edges[(c, sim.varNames[p])] + (0 if v else n_edges) for p, v in zip(sim.pas[child], row)]
            rows.append(cols + [2 * n_edges] * (width - len(cols)))
            children.append(c)
    return Network(
        model=model,
        genes=genes,
        rules=dict(sim.boolRules),
        inv_time_step=float(sim.invTimeStep),
        edge_child=child_idx,
        edge_parent=parent_idx,
        edge_k2=k2,
        term_child=np.array(children, dtype=int),
        term_edges=np.array(rows, dtype=int).reshape(len(rows), width),
    )
