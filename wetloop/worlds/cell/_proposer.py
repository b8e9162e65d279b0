"""The offline cocktail proposer: a menu of untried cocktails, built from the parts seen so far.

The space is small (1,563 cocktails of up to 3 of 11 genes at two levels). When the round's menu
(`ProposalContext.n_candidates`) can hold every untried cocktail, it does, and the planner's world
model ranks them all. Otherwise the menu is chosen: round 1 takes every single clamp (the parts) and
fills up at random; later rounds score every untried cocktail from the parts seen (`PartsModel`:
single and pairwise effects, bootstrapped) and take the best by an upper confidence bound
(two thirds of the menu), filling the rest at random so that untested genes keep a chance.
"""

from __future__ import annotations

import numpy as np

from wetloop.campaign import CandidateDraft, HypothesisDraft, Intervention, ProposalContext, ProposerReply, Value, Variable

from ._oracle import all_cocktails
from ._parts import PartsModel

__all__ = ["CocktailProposer"]


class CocktailProposer:
    name = "offline"

    def __init__(self, ucb: float = 1.0, exploit_share: float = 2 / 3) -> None:
        self.ucb, self.exploit_share = ucb, exploit_share

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        var = ctx.spec.interventions[0]
        run = {x.key() for x, _ in ctx.history}
        untried = [c for c in all_cocktails(var) if Intervention(values={var.name: c}).key() not in run]
        rng = np.random.default_rng([ctx.seed, ctx.round, 5])
        n = ctx.n_candidates
        seen = [
            (_cocktail(x.values[var.name]), o.readouts[ctx.spec.objective.readout])
            for x, o in ctx.history
            if o.status == "ok" and ctx.spec.objective.readout in o.readouts
        ]
        hyps: list[HypothesisDraft] = []
        if len(untried) <= n:
            hyps.append(self._draft("Every untried cocktail: the world model ranks them all.", untried, "untried cocktail", var))
        elif not seen:
            singles = [c for c in untried if len(c) == 1][:n]
            rest = [c for c in untried if len(c) != 1]
            fill = [rest[i] for i in rng.choice(len(rest), size=min(n - len(singles), len(rest)), replace=False)]
            hyps.append(
                self._draft(
                    "Each single clamp is a part every cocktail is built from: measure the parts first.",
                    singles,
                    "single clamp",
                    var,
                )
            )
            hyps.append(self._draft("Random cocktails sample how parts combine.", fill, "random cocktail", var))
        else:
            model = PartsModel(var.items or (), var.levels, pairs=True, seed=ctx.round).fit(
                [c for c, _ in seen], [y for _, y in seen]
            )
            samples = model.samples(untried)
            score = ctx.spec.objective.utility(samples.mean(0)) + self.ucb * samples.std(0)
            k = int(n * self.exploit_share)
            order = np.argsort(-score)
            best = [untried[i] for i in order[:k]]
            others = order[k:]
            fill = [untried[i] for i in rng.choice(others, size=min(n - k, len(others)), replace=False)]
            readout = ctx.spec.objective.readout
            hyps.append(
                self._draft(
                    f"Cocktails built from the single and pairwise effects seen so far should raise {readout} most "
                    f"(best {len(best)} by predicted mean plus {self.ucb:g} sd).",
                    best,
                    "built from parts seen",
                    var,
                )
            )
            hyps.append(
                self._draft("Untested combinations may hold effects no part seen so far predicts.", fill, "random cocktail", var)
            )
        return ProposerReply(source=self.name, hypotheses=[h for h in hyps if h.candidates])

    @staticmethod
    def _draft(statement: str, cocktails: list[dict[str, str]], why: str, var: Variable) -> HypothesisDraft:
        return HypothesisDraft(
            statement=statement,
            candidates=[CandidateDraft(values={var.name: c}, rationale=f"{why}: {var.describe(c)}") for c in cocktails],
        )


def _cocktail(value: Value) -> dict[str, str]:
    return dict(value) if isinstance(value, dict) else {}
