"""The offline cocktail proposer: every cocktail not yet run, so the planner ranks the whole space.

The space is small (1,563 cocktails of up to 3 of 11 genes at two levels), so nothing needs guessing:
the world model scores every cocktail each round. Candidates are grouped by the number of clamps,
each group a hypothesis in words: fewer clamps cost less, more clamps can push the network further.
"""

from __future__ import annotations

from wetloop.campaign import CandidateDraft, HypothesisDraft, Intervention, ProposalContext, ProposerReply

from ._oracle import all_cocktails

__all__ = ["CocktailProposer"]

STATEMENTS = {
    1: "A single clamped gene may be enough to tip committed cells into the target fate, at the lowest cost.",
    2: "Two clamps may move the network where one cannot: one to open the target fate's program, one to close the current fate's.",
    3: "Three clamps may be needed to hold the network long enough for the target fate to sustain itself once released.",
}


class CocktailProposer:
    name = "offline"

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        var = ctx.spec.interventions[0]
        run = {x.key() for x, _ in ctx.history}
        groups: dict[int, list[CandidateDraft]] = {}
        for cocktail in all_cocktails(var):
            values = {var.name: cocktail}
            if Intervention(values=values).key() in run:
                continue
            why = var.describe(cocktail)
            groups.setdefault(len(cocktail), []).append(CandidateDraft(values=values, rationale=f"cocktail {why}"))
        hyps = [
            HypothesisDraft(
                statement=STATEMENTS.get(k, f"A cocktail of {k} clamps may reach the target fate."), candidates=candidates
            )
            for k, candidates in sorted(groups.items())
        ]
        return ProposerReply(source=self.name, hypotheses=hyps)
