"""The world model's posterior over a discrete menu, computed once and looked up by row.

Ranking evaluates the acquisition for every candidate, then again for every candidate joined with
the ones already picked (sequential greedy over q). Rolling the world model forward each time
would repeat the same rollouts; `MenuModel` rolls every candidate out once and answers later
`posterior(X)` calls by finding X's rows in the menu and gathering their stored samples.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch
from botorch.models.ensemble import EnsembleModel
from botorch.models.model import Model
from botorch.posteriors import Posterior
from botorch.posteriors.ensemble import EnsemblePosterior
from botorch.sampling.base import MCSampler
from torch import Tensor

from .errors import PlannerError, WorldModelMismatch

__all__ = [
    "EnsembleEnumerationSampler",
    "MenuCost",
    "MenuModel",
    "RowIndex",
    "ensemble_shape",
    "menu_statistic",
    "posterior_values",
]


def ensemble_shape(model: Model) -> tuple[int, int]:
    """(members, particles) of a world model's BoTorch model, or WorldModelMismatch."""
    try:
        # duck-typed: nn.Module types unknown attributes as Tensor | Module; anything int() refuses is caught below
        members, particles = int(model.members), int(model.particles)  # type: ignore[arg-type]
    except (AttributeError, TypeError, ValueError):
        raise WorldModelMismatch(
            f"{type(model).__name__} lacks int `members` or int `particles`; the planner needs them to split "
            "posterior samples into ensemble members (give the EnsembleModel these attributes)",
            world=model,
        ) from None
    return members, particles


class RowIndex:
    """Finds rows of X among a fixed set of rows: a dict from row values to the first index with them.

    The greedy loop looks up b * q rows per evaluation; comparing each against all n rows as tensors
    would cost b * q * n * d per call.
    """

    def __init__(self, rows: Tensor) -> None:
        self._index: dict[tuple[float, ...], int] = {}
        for i, row in enumerate(rows.tolist()):
            self._index.setdefault(tuple(row), i)

    def __call__(self, X: Tensor) -> Tensor | None:
        """Index of each row of X (..., q, d) -> (..., q) long, or None if any row is not among them."""
        rows = [self._index.get(tuple(row)) for row in X.reshape(-1, X.shape[-1]).tolist()]
        if None in rows:
            return None
        return torch.tensor(rows, dtype=torch.long).reshape(X.shape[:-1])


class MenuCost:
    """Each candidate's cost, looked up by its row: X (..., q, d) -> (..., q) float64.

    `costs` (n,) are the costs of the rows of `choices` (n, d), e.g. `spec.cost_of` of each menu
    intervention; every cost must be positive (it divides the acquisition).
    """

    def __init__(self, choices: Tensor, costs: Tensor) -> None:
        self.index, self.costs = RowIndex(choices), costs.to(torch.float64)

    def __call__(self, X: Tensor) -> Tensor:
        index = self.index(X)
        if index is None:
            raise PlannerError(
                "a candidate to be costed is not on the menu the costs were computed for; "
                "build MenuCost from every row the acquisition will see"
            )
        return self.costs[index]


class MenuModel(EnsembleModel):
    """An `EnsembleModel` that serves a base ensemble model's samples for a fixed menu of inputs.

    Shapes: choices (n, d); stored samples (n, S, D), D opaque outputs (time points of a series,
    readouts of a scalar model). `forward(X)` with X (..., q, d), every row one of the choices,
    returns (..., S, q, D) without calling the base model; any other X is
    passed to the base model. Samples are stored in float64 so that probabilities and logdets are
    computed at full precision whatever the base model's dtype.
    """

    def __init__(self, base: Model, choices: Tensor) -> None:
        super().__init__()
        self.members, self.particles = ensemble_shape(base)
        self.base, self.choices, self._index = base, choices, RowIndex(choices)
        with torch.no_grad():
            values = posterior_values(base, choices)  # (S, n, D)
        self._check(values, len(choices))
        self.samples = values.to(torch.float64).transpose(0, 1).contiguous()  # (n, S, D)
        self._num_outputs = values.shape[-1]
        self._statistics: dict[Hashable, Tensor] = {}

    def _check(self, values: Tensor, n: int) -> None:
        if values.dim() != 3 or tuple(values.shape[:2]) != (self.members * self.particles, n):
            raise WorldModelMismatch(
                f"the world model's posterior for {n} candidates has values of shape {tuple(values.shape)}, "
                f"expected (S, n, D) with S = members * particles = {self.members * self.particles}; "
                "check the model's forward and its `members` and `particles` attributes",
                world=self.base,
            )

    def lookup(self, X: Tensor) -> Tensor | None:
        """Menu index of each row of X (..., q, d) -> (..., q) long, or None if any row is not on the menu."""
        return self._index(X)

    def statistic(self, X: Tensor, key: Hashable, fn: Callable[[Tensor], Tensor]) -> Tensor | None:
        """A per-candidate statistic of the samples, computed once for the whole menu, gathered for X's rows.

        `fn` maps samples (S, n, D) to (n, ...); the result is cached under `key`. Returns
        (..., q, ...) for X (..., q, d), or None when a row of X is not on the menu. Acquisitions whose
        joint value is built from per-candidate pieces (an information Gram matrix, a utility per
        sample) use it so the sequential greedy loop never recomputes them.
        """
        index = self.lookup(X)
        if index is None:
            return None
        if key not in self._statistics:
            self._statistics[key] = fn(self.samples.transpose(0, 1))
        return self._statistics[key][index]

    def forward(self, X: Tensor) -> Tensor:
        """X (..., q, d) -> samples (..., S, q, D), gathered from the menu when every row is on it."""
        index = self.lookup(X)
        if index is None:
            return posterior_values(self.base, X).to(torch.float64)
        return self.samples[index].transpose(-3, -2)  # (..., q, S, D) -> (..., S, q, D)


def posterior_values(model: Model, X: Tensor) -> Tensor:
    """`model.posterior(X).values`: the samples (S, ..., q, D) of an ensemble world model's posterior.

    The planner's contract is a BoTorch model whose posterior has `values`, as an `EnsemblePosterior`
    does (see `ensemble_shape`); BoTorch types `Model.posterior` as any `Posterior`.
    """
    return model.posterior(X).values  # type: ignore[attr-defined]


def menu_statistic(model: Model, X: Tensor, key: Hashable, fn: Callable[[Tensor], Tensor]) -> Tensor | None:
    """`model.statistic(X, key, fn)` for a MenuModel; None for any other model (compute from its posterior)."""
    return model.statistic(X, key, fn) if isinstance(model, MenuModel) else None


class EnsembleEnumerationSampler(MCSampler):
    """Returns every sample of an `EnsemblePosterior`, in order, rather than drawing some at random.

    BoTorch's `IndexSampler` draws member indices with replacement, so a Monte Carlo average over
    its draws is noisy; an ensemble of S = members * particles samples is already a discrete
    distribution, and averaging over all of it is the exact expectation (samples weigh equally, as
    they do in the world model's ensemble, whose `ensemble_weights` is None). Output shape:
    (S, batch, q, m) for values (batch, S, q, m). Other posteriors (e.g. BoTorch's MockPosterior
    in tests) are sampled with `rsample(sample_shape)`.
    """

    def __init__(self) -> None:
        super().__init__(sample_shape=torch.Size([1]), seed=0)

    def forward(self, posterior: Posterior) -> Tensor:
        if isinstance(posterior, EnsemblePosterior):
            return posterior.values.movedim(-3, 0)
        return posterior.rsample(self.sample_shape)
