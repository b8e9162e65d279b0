"""The planner: scores a menu of candidate experiments, removes unsafe ones, and picks a batch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf_discrete
from torch import Tensor

from wetloop.campaign import (
    Band,
    CampaignSpec,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    Readout,
    SafetyRemoval,
    ScoreBreakdown,
    Series,
)

from ._acquisition import CostWeightedAcquisition, EnsembleExpectedImprovement, EnsembleInformationGain, ReadoutObjective
from ._ceiling import Ceiling, reached_ceiling
from ._config import PlannerConfig
from ._features import ReadoutFeatures, readout_features
from ._history import encodable, encode, observed_readouts, safe_utilities, unique_proposals
from ._menu import MenuCost, MenuModel
from ._protocols import WorldLike
from ._safety import outside_start, p_unsafe, safety_removals, unit_of
from ._spacefill import MaxMinDistance, space_filling_batch
from .errors import EmptyMenu, PlannerError, WorldModelMismatch

__all__ = ["Planner"]

History = Sequence[tuple[Intervention, Observation]]


@dataclass
class _Round:
    """One call of `rank`: the deduplicated menu and what the planner decided about it."""

    menu: list[Proposal]
    is_run: list[bool]
    costs: Tensor  # (n,) each candidate's spec.cost_of, float64
    history: list[tuple[Intervention, Observation]]
    dropped: int
    keep: list[int] = field(default_factory=list)
    removed: list[SafetyRemoval] = field(default_factory=list)
    picked: list[int] = field(default_factory=list)
    scores: dict[int, ScoreBreakdown] = field(default_factory=dict)
    bands: dict[int, Band] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ran(self) -> list[Intervention]:
        return [x for x, _ in self.history]

    @property
    def selectable(self) -> list[int]:
        return [i for i in self.keep if not self.is_run[i]]


class Planner:
    """Ranks candidate experiments for one round of a campaign and picks a batch of `spec.budget.batch`.

    With a world model: a safety filter on the predicted P(unsafe), then
    acquisition = (ei_weight * EI + ig_weight * IG) / cost, cost = `spec.cost_of` each candidate,
    IG measured on the objective and the safety margins (`ReadoutFeatures`); the batch is picked
    greedily with `optimize_acqf_discrete`, each pick maximising what it adds to the picks before it
    (joint EI and IG) per unit of its own cost. Without one (the first round): a space-filling batch
    by greedy max-min distance per unit of cost. It never trains anything.

    Once the best safe result has reached the objective's ceiling (`ceiling`) and the spec's
    `at_ceiling.action` is `explore`, EI is 0 for every candidate and the acquisition is IG / cost alone.

    `series` and `readouts` are the declarations the world knows (`World.series(spec)`,
    `World.readouts(spec)`), default the spec's: they give units for safety reasons, the readouts
    that are fractions, and the min/max readouts of a series that safety margins use.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        config: PlannerConfig | None = None,
        *,
        series: Sequence[Series] | None = None,
        readouts: Sequence[Readout] | None = None,
    ) -> None:
        self.spec = spec
        self.config = config if config is not None else PlannerConfig()
        self.series = tuple(spec.series if series is None else series)
        self.readouts = tuple(spec.readouts if readouts is None else readouts)

    def rank(self, proposals: Sequence[Proposal], world: WorldLike | None, history: History, round: int) -> Ranking:
        """Rank `proposals` for round `round`; `history` is every (intervention, observation) already run.

        Duplicated candidates are dropped (the first kept); candidates already run are scored but
        never selected. Raises EmptyMenu when there is nothing to rank.
        """
        if not proposals:
            raise EmptyMenu(proposals)
        state = self._start(proposals, history)
        if world is None:
            self._space_filling(state)
        else:
            self._model_based(state, world)
        return Ranking(
            round=round,
            ranked=self._ranked(state),
            removed=tuple(state.removed),
            model_version=None if world is None else world.version,
            note=" ".join(state.notes),
        )

    def ceiling(self, history: History) -> Ceiling | None:
        """The first safe result of `history` at the objective's ceiling, or None (see `reached_ceiling`)."""
        return reached_ceiling(self.spec, history, self.readouts, self.series)

    def _start(self, proposals: Sequence[Proposal], history: History) -> _Round:
        menu = unique_proposals(proposals)
        run = {x.key() for x, _ in history}
        return _Round(
            menu=menu,
            is_run=[p.intervention.key() in run for p in menu],
            costs=self._costs(menu),
            history=list(history),
            dropped=len(proposals) - len(menu),
        )

    def _costs(self, menu: Sequence[Proposal]) -> Tensor:
        """Each candidate's cost (n,) float64; a cost that is not positive cannot divide an acquisition."""
        costs = [self.spec.cost_of(dict(p.intervention.values)) for p in menu]
        bad = [(p.intervention.values, c) for p, c in zip(menu, costs) if not (c > 0 and math.isfinite(c))]
        if bad:
            raise PlannerError(
                f"the spec's cost gives {bad[0][0]} a cost of {bad[0][1]:g}; every candidate must cost more "
                "than 0 (check cost.per_unit against the variables' lower bounds)"
            )
        return torch.tensor(costs, dtype=torch.float64)

    # -- first round: no model -------------------------------------------------------------------

    def _space_filling(self, state: _Round) -> None:
        """Greedy max-min batch (distance per unit of cost) over the candidates inside the start region."""
        if self.config.start_region_first:
            state.keep, state.removed = outside_start(self.spec, state.menu)
        else:
            state.keep = list(range(len(state.menu)))
        if not encodable(self.spec):
            return self._random_order(state)
        X = encode(self.spec, [p.intervention for p in state.menu])
        reference = torch.cat([encode(self.spec, state.ran), X[[i for i, r in enumerate(state.is_run) if r]]])
        q, choices = self._q(state), state.selectable
        rows, values = space_filling_batch(X[choices], reference, q, self.spec.seed, state.costs[choices]) if q else ([], [])
        state.picked = [choices[r] for r in rows]
        cost = MenuCost(X, state.costs)
        rest = MaxMinDistance(torch.cat([reference, X[state.picked]]), cost=cost)(X[state.keep].unsqueeze(-2))
        acquisition = dict(zip(state.keep, rest.tolist())) | dict(zip(state.picked, values))
        state.scores = {i: ScoreBreakdown(cost=float(state.costs[i]), acquisition=acquisition[i]) for i in state.keep}
        state.notes += [self._first_round_note(), *self._menu_notes(state, q)]

    def _random_order(self, state: _Round) -> None:
        """No generic encoding (a categorical variable whose names the world decides): with no distance to
        spread the batch by, the cheapest candidates, in a seeded random order among equal costs."""
        order = torch.randperm(len(state.menu), generator=torch.Generator().manual_seed(self.spec.seed)).tolist()
        order.sort(key=lambda i: float(state.costs[i]))  # stable: the random order breaks ties
        selectable = set(state.selectable)
        state.picked = [i for i in order if i in selectable][: self._q(state)]
        state.scores = {i: ScoreBreakdown(cost=float(state.costs[i]), acquisition=0.0) for i in state.keep}
        names = [v.name for v in self.spec.interventions if v.kind == "categorical" and v.choices is None]
        state.notes += [
            (
                f"No world model yet (first round), and {names} have no choices to measure distances with: the batch is "
                f"the cheapest candidates, drawn at random (seed {self.spec.seed}) among equal costs; acquisition = 0 for "
                "every candidate."
            ),
            *self._menu_notes(state, self._q(state)),
        ]

    def _first_round_note(self) -> str:
        why = "candidates outside the spec's start region were removed, and " if self.config.start_region_first else ""
        per_cost = " per unit of cost" if self.spec.cost.varies else ""
        return (
            "No world model yet (first round): nothing can predict safety or value, so the campaign's safety rests "
            f"on the spec's conservative start region; {why}the batch is space-filling (greedy max-min distance{per_cost} "
            f"in the encoded unit cube, ties broken with seed {self.spec.seed}). acquisition = distance to the nearest "
            f"point already chosen or run (for the first pick with nothing run, the cube's diameter), divided by the "
            "candidate's cost."
        )

    # -- later rounds: a world model -----------------------------------------------------------

    def _model_based(self, state: _Round, world: WorldLike) -> None:
        """One posterior over the whole menu; safety filter; score and select the survivors; bands."""
        X, model, readouts = self._predict(state, world)
        probs = p_unsafe(readouts, self.spec.safety, len(state.menu), world, self.readouts)
        units = [unit_of(limit, self.series, self.readouts) for limit in self.spec.safety]
        state.keep, state.removed = safety_removals(state.menu, probs, self.spec.safety, units)
        if state.keep:
            utility = self.spec.objective.utility(readouts[self.spec.objective.readout].double())  # (S, n)
            acq, ei, ig = self._acquisitions(model, world, state, utility, readouts)
            self._score(state, X, acq, ei, ig, readouts, probs)
            self._select(state, X, acq, model, world)
        state.notes += self._menu_notes(state, self._q(state))
        state.bands = {i: band for i in state.picked if (band := self._band(world, state.menu[i].intervention))}

    def _predict(self, state: _Round, world: WorldLike) -> tuple[Tensor, MenuModel, dict[str, Tensor]]:
        """The menu encoded (n, d), its posterior (rolled out once) and its readout samples, each (S, n)."""
        X = world.encode([p.intervention for p in state.menu])
        model = MenuModel(world.botorch_model(), X)
        readouts = world.outcome.readouts(model.samples.transpose(0, 1))
        if self.spec.objective.readout not in readouts:
            raise WorldModelMismatch(
                f"the world model's outcome gives readouts {sorted(readouts)} but not the objective's "
                f"{self.spec.objective.readout!r}; fix the spec's objective.readout or teach the outcome model that readout",
                world=world,
            )
        return X, model, readouts

    def _band(self, world: WorldLike, intervention: Intervention) -> Band | None:
        """The world model's predicted band, when it predicts one (a scalar model has none)."""
        predict = getattr(world, "predict_band", None)
        return predict(intervention, level=self.config.band_level) if callable(predict) else None

    def _acquisitions(
        self, model: MenuModel, world: WorldLike, state: _Round, utility: Tensor, readouts: dict[str, Tensor]
    ) -> tuple[CostWeightedAcquisition, EnsembleExpectedImprovement, EnsembleInformationGain]:
        """The composite acquisition and its two terms, with best_f from the safe history. utility, readouts (S, n)."""
        best_f, incumbent = self._best_f(state, utility)
        objective = ReadoutObjective(world.outcome, self.spec.objective.readout, self.spec.objective.utility)
        ei = EnsembleExpectedImprovement(model, best_f, objective)
        features = self._features(world, state, readouts, incumbent)
        ig = EnsembleInformationGain(model, aleatoric_floor=1.0, features=features)  # features are in floor units
        ceiling = self.ceiling(state.history) if self.spec.at_ceiling.action == "explore" else None
        if ceiling is None:
            terms: list[tuple[float, AcquisitionFunction]] = [(self.config.ei_weight, ei), (self.config.ig_weight, ig)]
            formula, picks = f"({self.config.ei_weight:g} * EI + {self.config.ig_weight:g} * IG) / cost", "joint EI and IG"
        else:
            terms, formula, picks = [(1.0, ig)], "IG / cost", "joint IG"
            state.notes.append(
                f"{ceiling.describe(self.spec)}; EI is 0 everywhere, so, as the spec's at_ceiling.action says (explore), "
                "the acquisition is information gain alone."
            )
        acq = CostWeightedAcquisition(model, terms, MenuCost(model.choices, state.costs))
        state.notes.insert(
            0,
            (
                f"Ranked with world model {world.version}: acquisition = {formula}, EI in {self.spec.objective.readout} "
                f"utility, IG in nats on {features.describe()}; the batch is picked greedily, each pick maximising what "
                f"it adds to the {picks} of the picks before it per unit of its cost."
            ),
        )
        return acq, ei, ig

    def _features(self, world: WorldLike, state: _Round, readouts: dict[str, Tensor], incumbent: float | None) -> ReadoutFeatures:
        """IG's features (objective, safety margins), scaled from the menu's readouts (S, n) and the history."""
        observed = [observed_readouts(o, self.readouts) for _, o in state.history if o.status == "ok"]
        features = readout_features(
            self.spec, readouts, observed, self.readouts, self.config.ig_noise_fraction, self.config.ig_margin_width, incumbent
        )
        return ReadoutFeatures(world.outcome, features)

    def _best_f(self, state: _Round, utility: Tensor) -> tuple[float, float | None]:
        """(best_f, the incumbent): the best safe observed utility, twice; with none, the lowest predicted one
        (EI then ranks by expected utility) and no incumbent. utility (S, n)."""
        observed = safe_utilities(self.spec, state.history, self.readouts)
        if observed:
            state.notes.append(f"best_f = {max(observed):.4g}, the best utility among {len(observed)} safe results.")
            return max(observed), max(observed)
        floor = float(utility[:, state.keep].min())
        state.notes.append(f"No safe result observed yet: best_f = {floor:.4g}, the lowest predicted utility.")
        return floor, None

    def _score(
        self,
        state: _Round,
        X: Tensor,
        acq: CostWeightedAcquisition,
        ei: EnsembleExpectedImprovement,
        ig: EnsembleInformationGain,
        readouts: dict[str, Tensor],
        probs: Tensor,
    ) -> None:
        """Single-candidate breakdown of every survivor (each as a batch of one). X (n, d); readouts
        (S, n) each; probs (n, L). Selected candidates were chosen jointly, so their single values
        need not be the highest: the greedy loop valued what each added to the ones before it.
        """
        Xk = X[state.keep].unsqueeze(-2)  # (k, 1, d)
        with torch.no_grad():
            a, e, g = acq(Xk).tolist(), ei(Xk).tolist(), ig(Xk).tolist()
        value = readouts[self.spec.objective.readout].double()[:, state.keep]  # (S, k)
        mean, std = value.mean(0).tolist(), value.std(0, correction=0).tolist()
        worst = probs[state.keep].amax(-1).tolist() if probs.shape[-1] else [None] * len(state.keep)
        for j, i in enumerate(state.keep):
            state.scores[i] = ScoreBreakdown(
                info_gain=g[j],
                expected_improvement=e[j],
                expected_value=mean[j],
                value_std=std[j],
                cost=float(state.costs[i]),
                p_unsafe=worst[j],
                acquisition=a[j],
            )

    def _select(self, state: _Round, X: Tensor, acq: CostWeightedAcquisition, model: MenuModel, world: WorldLike) -> None:
        """Sequential greedy batch over the survivors (X (n, d)), never a point already run."""
        q = self._q(state)
        if q == 0:
            return
        run = X[[i for i, r in enumerate(state.is_run) if r]]
        avoid = torch.cat([world.encode(state.ran).to(X), run]) if state.history else run
        picked, _ = optimize_acqf_discrete(acq, q=q, choices=X[state.keep], X_avoid=avoid if len(avoid) else None, unique=True)
        index = model.lookup(picked)
        assert index is not None, "the picked rows come from the menu"
        state.picked = index.tolist()

    # -- shared --------------------------------------------------------------------------------

    def _q(self, state: _Round) -> int:
        return min(self.spec.budget.batch, len(state.selectable))

    def _menu_notes(self, state: _Round, q: int) -> list[str]:
        notes = []
        if state.dropped:
            notes.append(f"{state.dropped} duplicate candidate(s) dropped (the first of each kept).")
        if state.removed:
            notes.append(f"{len(state.removed)} candidate(s) removed for safety (see `removed` for each reason).")
        ran = sum(state.is_run[i] for i in state.keep)
        if ran:
            notes.append(f"{ran} candidate(s) already run: scored, never selected, listed last.")
        if q < self.spec.budget.batch:
            notes.append(
                f"Only {q} candidate(s) could be selected of the batch of {self.spec.budget.batch}; "
                "ask the proposer for more candidates to fill it."
            )
        return notes

    def _ranked(self, state: _Round) -> tuple[RankedProposal, ...]:
        """Selected first (selection order), then the rest by acquisition, already-run ones last."""
        rest = [i for i in state.keep if i not in state.picked]
        rest.sort(key=lambda i: (state.is_run[i], -state.scores[i].acquisition))  # stable: menu order breaks ties
        return tuple(
            RankedProposal(
                proposal=state.menu[i], rank=r, score=state.scores[i], selected=i in state.picked, band=state.bands.get(i)
            )
            for r, i in enumerate(state.picked + rest, start=1)
        )
