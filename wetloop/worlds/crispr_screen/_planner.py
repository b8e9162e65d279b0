"""The screen planner: ranks every untested gene of a screen and picks a batch.

acquisition(gene) = E[P(hit)] + ig_weight * IG, IG = the ensemble's mutual information about the
hit (entropy of the mean minus mean entropy of the members, in nats, BALD for a Bernoulli readout),
as a BoTorch `AcquisitionFunction` over gene indices. The batch is batch Thompson sampling over the
ensemble: slot k goes to member k mod M, which takes its own best untested gene (its P(hit) + the
same IG term) not already in the batch. Where the members agree (before any result) that is the
top q by acquisition; where they disagree the batch spreads over what different members believe,
with no diversity weight to tune. (A STRING-neighbour penalty tried before cost hits on both
benchmark screens: hits cluster on the network, so damping neighbours damps the signal.)
The menu is the proposer's genes (each keeping its hypothesis) plus every untested gene the world
model offers (`selectable`: e.g. core-essential genes left out); the ranking record keeps the batch
and the top `keep_top` of the rest. Settings: `ScreenPlannerConfig` (env prefix `WETLOOP_SCREENPLANNER_`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from torch import Tensor

from wetloop.campaign import (
    CampaignSpec,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    ScoreBreakdown,
    StrictSettings,
)
from wetloop.planners.errors import EmptyMenu

__all__ = [
    "ScreenAcquisition",
    "ScreenPlanner",
    "ScreenPlannerConfig",
    "ScreenWorldLike",
    "bernoulli_information_gain",
    "thompson_batch",
]


class ScreenPlannerConfig(StrictSettings):
    """Settings of `ScreenPlanner` (env prefix `WETLOOP_SCREENPLANNER_`); explicit arguments beat the environment.

    - `ig_weight` (0.05): acquisition = P(hit) + ig_weight * IG in nats. IG of a Bernoulli readout is at
      most log 2, so it can lift an uncertain gene by a few points of P(hit). The batch is Thompson
      sampling over the ensemble's members (no weight to set).
    - `keep_top` (300): ranked genes kept in the ranking record besides the batch.
    """

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SCREENPLANNER_", extra="forbid")

    ig_weight: float = Field(default=0.05, ge=0.0)
    keep_top: int = Field(default=300, ge=0)


class ScreenWorldLike(Protocol):
    """A screen world model as the planner sees it (`worldmodel.ScreenWorldModel` is one)."""

    version: str
    genes: tuple[str, ...]
    gene_index: dict[str, int]

    def botorch_model(self) -> Model:
        """EnsembleModel: X (..., q, 1) gene indices -> posterior values (..., M, q, 1) P(hit)."""
        ...

    @property
    def selectable(self) -> np.ndarray:
        """(n,) bool: genes the campaign may choose (the planner offers no others)."""
        ...


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

    def parts(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(members' P(hit) (b, M); mean P(hit), member std, IG, each (b,)) for X (b, 1, 1)."""
        p = self.model.posterior(X).values[..., 0, 0]  # type: ignore[attr-defined]  # a ScreenEnsembleModel: an EnsemblePosterior
        return p, p.mean(-1), p.std(-1, correction=0), bernoulli_information_gain(p)

    def forward(self, X: Tensor) -> Tensor:
        _, mean, _, ig = self.parts(X)
        return mean + self.ig_weight * ig


class ScreenPlanner:
    """Ranks a screen's untested genes; `rank` has the `Planner.rank` signature."""

    def __init__(self, spec: CampaignSpec, config: ScreenPlannerConfig | None = None) -> None:
        self.spec, self.config = spec, config or ScreenPlannerConfig()
        self.variable = spec.interventions[0].name

    def rank(
        self,
        proposals: Sequence[Proposal],
        world: ScreenWorldLike | None,
        history: Sequence[tuple[Intervention, Observation]],
        round: int,
    ) -> Ranking:
        """Score the proposer's genes and every untested library gene; pick `spec.budget.batch` of them."""
        if world is None:
            raise EmptyMenu(proposals)
        tested = {world.gene_index[g] for x, _ in history if (g := str(x.values.get(self.variable))) in world.gene_index}
        menu = self._menu(proposals, world, tested)
        if not len(menu):
            raise EmptyMenu(proposals)
        idx = torch.tensor(sorted(menu), dtype=torch.float64).reshape(-1, 1, 1)
        acq = ScreenAcquisition(world.botorch_model(), self.config.ig_weight)
        with torch.no_grad():
            members, mean, std, ig = acq.parts(idx)
        value = (mean + acq.ig_weight * ig).numpy()
        per_member = (members + acq.ig_weight * ig.unsqueeze(-1)).numpy()
        picked = thompson_batch(per_member, self.spec.budget.batch)
        genes = idx[:, 0, 0].long().numpy()
        named = [world.gene_index.get(str(p.intervention.values.get(self.variable))) for p in proposals]
        left_out = sum(1 for i in named if i is not None and not world.selectable[i])
        return self._record(round, world, menu, genes, picked, (value, mean.numpy(), std.numpy(), ig.numpy()), left_out)

    def _menu(self, proposals: Sequence[Proposal], world: ScreenWorldLike, tested: set[int]) -> dict[int, Proposal | None]:
        """Gene index -> the proposal that brought it (None: the world model's own candidate)."""
        menu: dict[int, Proposal | None] = {int(i): None for i in np.flatnonzero(world.selectable) if i not in tested}
        for p in proposals:
            i = world.gene_index.get(str(p.intervention.values.get(self.variable)))
            if i in menu and menu[i] is None:
                menu[i] = p
        return menu

    def _record(self, rnd, world, menu, genes, picked, scores, left_out: int) -> Ranking:
        value, mean, std, ig = scores
        rest = np.setdiff1d(np.argsort(-value, kind="stable")[: self.config.keep_top + len(picked)], picked, assume_unique=True)[
            : self.config.keep_top
        ]
        cost = self.spec.cost.per_experiment
        ranked = []
        for r, j in enumerate([*picked.tolist(), *rest.tolist()], start=1):
            g = int(genes[j])
            proposal = menu[g] or Proposal(
                intervention=Intervention(values={self.variable: world.genes[g]}),
                rationale="ranked by the world model",
                source="model",
            )
            score = ScoreBreakdown(
                info_gain=float(ig[j]),
                expected_value=float(mean[j]),
                value_std=float(std[j]),
                cost=cost,
                acquisition=float(value[j]) / cost,
            )
            ranked.append(RankedProposal(proposal=proposal, rank=r, score=score, selected=r <= len(picked)))
        note = (
            f"Ranked {len(genes)} untested genes with screen model {world.version}: acquisition = P(hit) + "
            f"{self.config.ig_weight:g} * IG (nats); batch by Thompson sampling over the ensemble's "
            f"members. {int((~world.selectable).sum())} library genes are not selectable (core-essential), and "
            f"{left_out} proposals named one of them (left out). The record keeps the batch and the top "
            f"{self.config.keep_top} others."
        )
        return Ranking(round=rnd, ranked=tuple(ranked), model_version=world.version, note=note)


def thompson_batch(per_member: np.ndarray, q: int) -> np.ndarray:
    """Batch Thompson sampling over ensemble members. per_member (b, M): member m's acquisition of each
    candidate. Slot k goes to member k mod M, which takes its best candidate not yet picked.
    Returns positions (min(q, b),), distinct, in the order picked."""
    b, M = per_member.shape
    order = np.argsort(-per_member, axis=0, kind="stable")  # (b, M): each member's ranking
    taken, cursor, picked = np.zeros(b, bool), np.zeros(M, np.int64), []
    for k in range(min(q, b)):
        m = k % M
        while taken[order[cursor[m], m]]:
            cursor[m] += 1
        j = int(order[cursor[m], m])
        taken[j] = True
        picked.append(j)
    return np.array(picked, dtype=np.int64)
