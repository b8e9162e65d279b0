"""The offline gene proposer: hypotheses about which genes regulate a screen's phenotype, no LLM.

Round 1 (no results): the screen's task text is matched against gene-set names (MiniLM); each of the
best-matching sets becomes a hypothesis ("<set> regulates <phenotype>") naming its genes.
Later rounds: gene sets and co-essential modules enriched in the hits observed so far (at least two
hits, a one-sided binomial tail below `alpha` against the campaign's own hit rate) become hypotheses
naming their untested genes, and so do the network neighbourhoods of the observed hits. Nothing
here reads a screen's scores: only the lab's answers in the history.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from wetloop.campaign import CandidateDraft, HypothesisDraft, ProposalContext, ProposerReply

from ._features import ScreenFeatures
from ._model import screen_features
from ._text import set_name_text

__all__ = ["GeneProposer"]


class GeneProposer:
    """Offline proposer for campaigns whose intervention is one categorical gene."""

    name = "offline"

    def __init__(self, n_sets: int = 8, per_set: int = 40, alpha: float = 0.01) -> None:
        self.n_sets, self.per_set, self.alpha = n_sets, per_set, alpha

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        f = screen_features(ctx.spec)
        var = ctx.spec.interventions[0].name
        tested, hits = self._results(f, ctx, var)
        hyps = (
            self._text_hypotheses(f, ctx, tested)
            if not tested.any()
            else self._enriched(f, ctx, tested, hits) + self._neighbourhoods(f, tested, hits)
        )
        for h in hyps:
            for c in h.candidates:
                c.values = {var: c.values["gene"]}
        return ProposerReply(source=self.name, hypotheses=[h for h in hyps if h.candidates])

    def _results(self, f: ScreenFeatures, ctx: ProposalContext, var: str) -> tuple[np.ndarray, np.ndarray]:
        index = {g: i for i, g in enumerate(f.genes)}
        tested, hits = np.zeros(len(f.genes), bool), np.zeros(len(f.genes), bool)
        for x, obs in ctx.history:
            i = index.get(str(x.values.get(var)))
            if i is not None and obs.status == "ok":
                tested[i], hits[i] = True, obs.readouts.get("hit", 0.0) > 0
        return tested, hits

    def _draft(self, f: ScreenFeatures, s: int, tested: np.ndarray, statement: str, why: str) -> HypothesisDraft:
        genes = [i for i in f.members[:, s].nonzero()[0] if not tested[i]]
        genes = sorted(genes, key=lambda i: -f.static[i, 0])[: self.per_set]  # best-connected first
        return HypothesisDraft(
            statement=statement, candidates=[CandidateDraft(values={"gene": f.genes[i]}, rationale=why) for i in genes]
        )

    def _text_hypotheses(self, f: ScreenFeatures, ctx: ProposalContext, tested: np.ndarray) -> list[HypothesisDraft]:
        out = []
        for s in f.top_sets(self.n_sets):
            name = set_name_text(f.set_names[s])
            out.append(
                self._draft(
                    f,
                    s,
                    tested,
                    f"Genes of '{name}' regulate the phenotype of this screen "
                    f"({ctx.spec.question.strip()[:120]}); its name matches the task (similarity {f.set_sim[s]:.2f}).",
                    f"member of '{name}'",
                )
            )
        return out

    def _enriched(self, f: ScreenFeatures, ctx: ProposalContext, tested: np.ndarray, hits: np.ndarray) -> list[HypothesisDraft]:
        T = np.asarray(f.members[tested].sum(0)).ravel()
        H = np.asarray(f.members[tested & hits].sum(0)).ravel()
        p0 = (hits.sum() + 1) / (tested.sum() + 2)
        pval = binom.sf(H - 1, T, p0)
        order = [s for s in np.argsort(pval, kind="stable") if H[s] >= 2 and pval[s] < self.alpha][: self.n_sets]
        return [
            self._draft(
                f,
                s,
                tested,
                f"'{set_name_text(f.set_names[s])}' regulates the phenotype: its genes are hits more often than "
                "the campaign's others.",
                f"untested member of enriched set '{set_name_text(f.set_names[s])}' ({int(H[s])} hits among its "
                f"{int(T[s])} tested genes; campaign hit rate {p0:.2f}, binomial p = {pval[s]:.1e})",
            )
            for s in order
        ]

    def _neighbourhoods(self, f: ScreenFeatures, tested: np.ndarray, hits: np.ndarray) -> list[HypothesisDraft]:
        if not hits.any():
            return []
        score = f.network @ hits.astype(float)
        cand = [i for i in np.argsort(-score, kind="stable")[: 4 * self.per_set] if score[i] > 0 and not tested[i]][
            : self.per_set
        ]
        names = ", ".join(f.genes[i] for i in np.flatnonzero(hits)[:8])
        return [
            HypothesisDraft(
                # one statement for the whole campaign, so its evidence accumulates; the hits it rests on
                # now are in each candidate's rationale
                statement="Functional partners (STRING) of the campaign's hits act in the same pathways and regulate "
                "the phenotype too.",
                candidates=[
                    CandidateDraft(values={"gene": f.genes[i]}, rationale=f"STRING neighbour of hits ({names}...)") for i in cand
                ],
            )
        ]
