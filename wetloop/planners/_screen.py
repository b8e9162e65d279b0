"""The screen planner: ranks every untested gene of a screen and picks a batch.

acquisition(gene) = E[P(hit)] + ig_weight * IG, IG = the ensemble's mutual information about the
hit (entropy of the mean minus mean entropy of the members, in nats, BALD for a Bernoulli readout),
as a BoTorch `AcquisitionFunction` over gene indices. The batch is picked greedily (the
`optimize_acqf_discrete` pattern) with a diversity penalty: after each pick, the acquisition of its
STRING neighbours is multiplied by (1 - diversity * edge weight), so one complex does not fill
the batch. The menu is the proposer's genes (each keeping its hypothesis) plus every untested gene
of the library that the world model supplies; the ranking record keeps the batch and the top
`keep_top` of the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, Proposal, RankedProposal, Ranking, ScoreBreakdown

from ._config import PlannerConfig
from .errors import EmptyMenu

__all__ = ["ScreenAcquisition", "ScreenPlanner", "ScreenWorldLike", "bernoulli_information_gain"]


class ScreenWorldLike(Protocol):
    """A screen world model as the planner sees it (`worldmodel.ScreenWorldModel` is one)."""

    version: str
    genes: tuple[str, ...]
    gene_index: dict[str, int]

    def botorch_model(self) -> Model:
        """EnsembleModel: X (..., q, 1) gene indices -> posterior values (..., M, q, 1) P(hit)."""
        ...

    @property
    def network(self) -> sp.csr_matrix: ...


def _entropy(p: Tensor) -> Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)  # 1 - 1e-9 rounds to 1 in float32
    return -(p * p.log() + (1 - p) * (1 - p).log())


def bernoulli_information_gain(p: Tensor) -> Tensor:
    """Members' P(hit) (..., M) -> mutual information (...) in nats: H(mean) - mean(H)."""
    return _entropy(p.mean(-1)) - _entropy(p).mean(-1)


class ScreenAcquisition(AcquisitionFunction):
    """E[P(hit)] + ig_weight * IG per gene. forward: X (b, 1, 1) gene indices -> (b,)."""

    def __init__(self, model: Model, ig_weight: float) -> None:
        super().__init__(model)
        self.ig_weight = ig_weight

    def parts(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(mean P(hit), member std, IG), each (b,), for X (b, 1, 1)."""
        p = self.model.posterior(X).values[..., 0, 0]  # (b, M)
        return p.mean(-1), p.std(-1, correction=0), bernoulli_information_gain(p)

    def forward(self, X: Tensor) -> Tensor:
        mean, _, ig = self.parts(X)
        return mean + self.ig_weight * ig


class ScreenPlanner:
    """Ranks a screen's untested genes; `rank` has the `Planner.rank` signature."""

    def __init__(self, spec: CampaignSpec, config: PlannerConfig | None = None) -> None:
        self.spec, self.config = spec, config or PlannerConfig()
        self.variable = spec.interventions[0].name

    def rank(self, proposals: Sequence[Proposal], world: ScreenWorldLike | None,
             history: Sequence[tuple[Intervention, Observation]], round: int) -> Ranking:
        """Score the proposer's genes and every untested library gene; pick `spec.budget.batch` of them."""
        if world is None:
            raise EmptyMenu(proposals)
        tested = {world.gene_index[g] for x, _ in history if (g := str(x.values.get(self.variable))) in world.gene_index}
        menu = self._menu(proposals, world, tested)
        if not len(menu):
            raise EmptyMenu(proposals)
        idx = torch.tensor(sorted(menu), dtype=torch.float64).reshape(-1, 1, 1)
        acq = ScreenAcquisition(world.botorch_model(), self.config.screen_ig_weight)
        with torch.no_grad():
            mean, std, ig = (t.numpy() for t in acq.parts(idx))
        value = mean + acq.ig_weight * ig
        genes = idx[:, 0, 0].long().numpy()
        picked = greedy_diverse(value, genes, world.network, self.spec.budget.batch, self.config.screen_diversity)
        return self._record(round, world, menu, genes, picked, value, mean, std, ig)

    def _menu(self, proposals: Sequence[Proposal], world: ScreenWorldLike, tested: set[int]) -> dict[int, Proposal | None]:
        """Gene index -> the proposal that brought it (None: the world model's own candidate)."""
        menu: dict[int, Proposal | None] = {i: None for i in range(len(world.genes)) if i not in tested}
        for p in proposals:
            i = world.gene_index.get(str(p.intervention.values.get(self.variable)))
            if i is not None and i not in tested and menu.get(i) is None:
                menu[i] = p
        return menu

    def _record(self, rnd, world, menu, genes, picked, value, mean, std, ig) -> Ranking:
        rest = np.setdiff1d(np.argsort(-value, kind="stable")[: self.config.screen_keep_top + len(picked)], picked,
                            assume_unique=True)[: self.config.screen_keep_top]
        cost = self.spec.cost.per_experiment
        ranked = []
        for r, j in enumerate([*picked.tolist(), *rest.tolist()], start=1):
            g = int(genes[j])
            proposal = menu[g] or Proposal(intervention=Intervention(values={self.variable: world.genes[g]}),
                                           rationale="ranked by the world model", source="model")
            score = ScoreBreakdown(info_gain=float(ig[j]), expected_value=float(mean[j]), value_std=float(std[j]),
                                   cost=cost, acquisition=float(value[j]) / cost)
            ranked.append(RankedProposal(proposal=proposal, rank=r, score=score, selected=r <= len(picked)))
        note = (f"Ranked {len(genes)} untested genes with screen model {world.version}: acquisition = P(hit) + "
                f"{self.config.screen_ig_weight:g} * IG (nats); greedy batch with STRING diversity penalty "
                f"{self.config.screen_diversity:g}; the record keeps the batch and the top {self.config.screen_keep_top} others.")
        return Ranking(round=rnd, ranked=tuple(ranked), model_version=world.version, note=note)


def greedy_diverse(value: np.ndarray, genes: np.ndarray, network: sp.csr_matrix, q: int, diversity: float) -> np.ndarray:
    """Pick q positions of `value` (n,) greedily; each pick damps its STRING neighbours' values by
    (1 - diversity * weight). genes (n,) are the rows of `network` (N, N). Returns positions (q,)."""
    v = value.astype(np.float64).copy()
    pos = np.full(network.shape[0], -1)
    pos[genes] = np.arange(len(genes))
    picked = []
    for _ in range(min(q, len(v))):
        j = int(np.argmax(v))
        picked.append(j)
        v[j] = -np.inf
        row = network.getrow(int(genes[j]))
        near = pos[row.indices]
        ok = near >= 0
        v[near[ok]] *= 1.0 - diversity * row.data[ok]
    return np.array(picked, dtype=np.int64)
