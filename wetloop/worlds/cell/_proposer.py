"""The offline cocktail proposer: every cocktail not yet run, for the planner's world model to rank.

The space is small (1,563 cocktails of up to 3 of 11 genes at two levels) and the world model predicts
every one of them at each refit, so the menu is the whole untried space whatever the round's menu size
(`ProposalContext.n_candidates` bounds what an LLM lists, not what a model can rank). Before the first
result the planner spreads the first batch over the space; afterwards it ranks them all.
"""

from __future__ import annotations

from wetloop.campaign import CandidateDraft, HypothesisDraft, Intervention, ProposalContext, ProposerReply

from ._oracle import all_cocktails

__all__ = ["CocktailProposer"]


class CocktailProposer:
    name = "offline"

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        var = ctx.spec.interventions[0]
        run = {x.key() for x, _ in ctx.history}
        untried = [c for c in all_cocktails(var) if Intervention(values={var.name: c}).key() not in run]
        statement = (
            f"Every cocktail not yet run ({len(untried)}): the world model predicts each one's fate shares from the "
            "results so far, and the planner ranks them all."
        )
        draft = HypothesisDraft(
            statement=statement,
            candidates=[CandidateDraft(values={var.name: c}, rationale=f"untried cocktail: {var.describe(c)}") for c in untried],
        )
        return ProposerReply(source=self.name, hypotheses=[draft] if untried else [])
