"""Space-filling selection for the first round, when there is no world model to rank with."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf_discrete
from botorch.utils.transforms import t_batch_mode_transform
from torch import Tensor

from ._menu import MenuCost

__all__ = ["MaxMinDistance", "space_filling_batch"]


class MaxMinDistance(AcquisitionFunction):
    """The smallest Euclidean distance within a batch and from it to reference points, per unit of cost.

    Shapes: reference (r, d), possibly empty (points already run); forward X (b, q, d) -> (b,).
    Greedy maximisation with pending points is farthest-point sampling. With nothing to measure
    against, the distance is the unit cube's diameter sqrt(d), the largest there can be. `cost`
    (optional) maps X (..., q, d) -> (..., q) per-candidate costs (`MenuCost`): the distance is then
    divided by the new points' total cost (pending points excluded), so among candidates about as
    far from everything chosen, the cheaper goes first; with equal costs the picks are unchanged.
    It needs no model (`model` is None).
    """

    def __init__(
        self, reference: Tensor, X_pending: Tensor | None = None, cost: Callable[[Tensor], Tensor] | None = None
    ) -> None:
        super().__init__(model=None)  # type: ignore[arg-type]  # a distance, not a model prediction
        self.reference, self.cost = reference, cost
        self.set_X_pending(X_pending)

    @t_batch_mode_transform()  # type: ignore[arg-type]  # BoTorch types the decorated method's self as AcquisitionFunction
    def forward(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> min distance (b,) among the batch and pending points and to the reference points."""
        pending = self.X_pending
        joint = X if pending is None else torch.cat([X, pending.to(X).expand(*X.shape[:-2], *pending.shape)], dim=-2)
        distance = self._min_distance(joint)
        return distance if self.cost is None else distance / self.cost(X).to(X).sum(-1)

    def _min_distance(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> (b,) smallest distance between two of X's points or from one to the reference."""
        b, q, d = X.shape
        ref = self.reference.to(X).expand(b, -1, -1)
        dist = torch.cdist(X, torch.cat([ref, X], dim=-2))  # (b, q, r + q)
        self_pairs = torch.zeros_like(dist, dtype=torch.bool)
        self_pairs[..., ref.shape[-2] :] = torch.eye(q, dtype=torch.bool)  # a point's distance to itself
        diameter = math.sqrt(d)
        return dist.masked_fill(self_pairs, diameter).amin(dim=(-2, -1)).clamp_max(diameter)


def space_filling_batch(
    choices: Tensor, reference: Tensor, q: int, seed: int, costs: Tensor | None = None
) -> tuple[list[int], list[float]]:
    """Greedy max-min batch of q rows of `choices` (n, d), away from `reference` (r, d).

    `costs` (n,) (optional): each choice's cost; the greedy rule is then distance per unit of cost
    (see `MaxMinDistance`). Returns (menu indices in selection order, each one's acquisition when
    picked). The menu is shuffled with `seed` first, so ties (e.g. the first pick when there is no
    reference) are broken at random but reproducibly: `optimize_acqf_discrete` takes the first maximum.
    """
    order = torch.randperm(len(choices), generator=torch.Generator().manual_seed(seed))
    shuffled = choices[order]
    cost = MenuCost(shuffled, costs[order]) if costs is not None else None
    picked, values = optimize_acqf_discrete(
        MaxMinDistance(reference, cost=cost),
        q=q,
        choices=shuffled,
        X_avoid=reference if len(reference) else None,
        unique=True,
    )
    rows = [int(order[_row_of(shuffled, x)]) for x in picked]
    return rows, [float(v) for v in values.reshape(-1)]


def _row_of(choices: Tensor, x: Tensor) -> int:
    """Index of the first row of choices (n, d) equal to x (d,)."""
    return int((choices == x).all(-1).to(torch.uint8).argmax())
