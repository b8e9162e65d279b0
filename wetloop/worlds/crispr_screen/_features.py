"""Features of a screen's genes: static knowledge, a prior from the task text, and neighbour aggregates.

For the n genes of a screen (the library: names only, never scores), built once per campaign:
- static (n, F): network degree, gene-set counts, co-essentiality map (from `GeneKnowledge`);
- prior (n,): similarity of the screen's task text to the names of the gene's sets (MiniLM), the
  top sets weighted by how far their similarity rises above the rest, each set scaled by 1/sqrt(size);
- `dynamic(tested, hit, score)` (n, D): what the results so far say about each gene's neighbourhood
  (STRING neighbours' hits and |score|, the best smoothed hit enrichment among its gene sets and its
  co-essential module), each tested gene's own result left out of its own features;
- `set_propagation(weight, hit)` (M, n): the results propagated through shared gene sets (each set's
  hit enrichment z, summed over a gene's sets), once per weighting of the tested genes;
- `score_propagation(weight, score)` ((M, n), (M, n)): the tested genes' |score| ranks propagated
  through the gene sets and through STRING.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from ._genes import COLLECTIONS, GeneKnowledge
from ._text import text_similarity

__all__ = ["ScreenFeatures", "TOP_SETS"]

TOP_SETS = 40  # sets that carry the text prior
_TEXT_COLLECTIONS = ("reactome", "gobp", "celltype", "coess_module")  # names that describe biology in words
DYNAMIC_NAMES = ("nb_hits", "nb_tested", "nb_hit_rate", "nb_abs_score", "set_rate_max", "set_z_max", "set_z_mean")


@dataclass
class ScreenFeatures:
    """Feature builder for one screen. Shapes: static (n, F); prior (n,); members (n, S) csr;
    network (n, n) csr restricted to the screen's genes; set_sim (S,) similarity of each set's name."""

    genes: tuple[str, ...]
    static: np.ndarray
    prior: np.ndarray
    network: sp.csr_matrix
    members: sp.csr_matrix
    set_sim: np.ndarray
    set_names: np.ndarray

    @classmethod
    def build(cls, know: GeneKnowledge, genes: tuple[str, ...], task: str) -> ScreenFeatures:
        rows = know.rows_for(genes)
        known = rows >= 0
        pick = sp.csr_matrix(
            (np.ones(known.sum(), np.float32), (np.flatnonzero(known), rows[known])), shape=(len(genes), len(know.symbols))
        )
        static = np.zeros((len(genes), know.static.shape[1] + 1), np.float32)
        static[known, :-1] = know.static[rows[known]]
        static[:, -1] = known
        network = (pick @ know.network @ pick.T).tocsr()
        members = (pick @ know.sets).tocsr()
        set_sim = _set_similarity(know, task)
        prior = _prior(members, set_sim)
        return cls(genes, static, prior, network, members, set_sim, know.set_names)

    def top_sets(self, k: int = TOP_SETS) -> np.ndarray:
        """Indices of the k sets whose names are most similar to the task (ties: lower index first)."""
        return np.argsort(-self.set_sim, kind="stable")[:k]

    def dynamic(self, tested: np.ndarray, hit: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Neighbourhood features (n, D) from results so far. tested (n,) bool; hit, score (n,) float
        (zero where untested). A tested gene's own result never enters its own features."""
        t, h = tested.astype(np.float64), hit * tested
        z = np.abs(score) * tested
        z = z / (z[tested].std() + 1e-9) if tested.any() else z
        p0 = (h.sum() + 1.0) / (t.sum() + 20.0)
        nb_t, nb_h, nb_z = self.network @ t, self.network @ h, self.network @ z
        rate, zmax, zmean = self._set_enrichment(t, h, p0)
        return np.stack(
            [np.log1p(nb_h), np.log1p(nb_t), (nb_h + 2 * p0) / (nb_t + 2), nb_z / (nb_t + 1.0), rate, zmax, zmean], axis=1
        ).astype(np.float32)

    def set_propagation(self, weight: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """Results propagated through shared gene sets. weight (M, n) >= 0: how much each tested gene counts
        in each of M weightings (0 = untested; bootstrap weights give an ensemble); hit (n,) 0/1.
        Per weighting: p0 = the smoothed hit rate, each set's enrichment z = (H - p0 T) / sqrt(p0 (1 - p0) T + 1)
        from its weighted tested genes T and hits H, and each gene's score = the sum of z over its sets
        (gene sets, co-essential modules): a gene scores high when it shares many sets with hits and
        few with tested non-hits. Returns (M, n) float64."""
        W = np.atleast_2d(weight).astype(np.float64)
        T = (self.members.T @ W.T).T  # (M, S)
        H = (self.members.T @ (W * hit).T).T
        p0 = ((W * hit).sum(1, keepdims=True) + 1.0) / (W.sum(1, keepdims=True) + 20.0)  # (M, 1)
        z = (H - p0 * T) / np.sqrt(p0 * (1 - p0) * T + 1.0)
        return np.asarray(self.members @ z.T).T

    def score_propagation(self, weight: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tested genes' |score| propagated through shared gene sets and through STRING, as
        `set_propagation` does with hits: a screen returns a score for every gene, and the genes just short
        of the hit threshold say where hits are too. weight (M, n) as there; score (n,) the measured
        scores (tested genes only). Each tested gene's |score| rank among the tested, centred (q in
        (-1/2, 1/2), variance 1/12 with no effect). Per weighting, each set's z = sum w q / sqrt((T + 1) /
        12) and each gene's set score = the sum of z over its sets; each gene's network score = the same
        z over its STRING neighbours (edges weighted as in the network). Returns (sets, network), each
        (M, n) float64."""
        W = np.atleast_2d(weight).astype(np.float64)
        tested = W.any(0)
        q = np.zeros(W.shape[1])
        if tested.any():
            q[tested] = (rankdata(np.abs(score[tested])) - 0.5) / tested.sum() - 0.5
        T = (self.members.T @ W.T).T  # (M, S)
        Q = (self.members.T @ (W * q).T).T
        sets = np.asarray(self.members @ (Q / np.sqrt((T + 1.0) / 12.0)).T).T
        near = np.asarray(self.network @ (W * q).T).T / np.sqrt((np.asarray(self.network @ W.T).T + 1.0) / 12.0)
        return sets, near

    def _set_enrichment(self, t: np.ndarray, h: np.ndarray, p0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per gene: best smoothed hit rate and best / mean enrichment z over its sets, leave-self-out."""
        m = self.members.tocoo()
        T, H = self.members.T @ t, self.members.T @ h  # per set
        Ts, Hs = T[m.col] - t[m.row], H[m.col] - h[m.row]  # per (gene, set) entry, own result removed
        rate = (Hs + 4 * p0) / (Ts + 4)
        z = (Hs - p0 * Ts) / np.sqrt(p0 * (1 - p0) * Ts + 1.0)
        n = len(self.genes)
        best_rate = np.full(n, p0)
        np.maximum.at(best_rate, m.row, rate)
        best_z = np.zeros(n)
        np.maximum.at(best_z, m.row, z)
        count = np.bincount(m.row, minlength=n)
        mean_z = np.bincount(m.row, weights=z, minlength=n) / np.maximum(count, 1)
        return best_rate, best_z, mean_z


def _set_similarity(know: GeneKnowledge, task: str) -> np.ndarray:
    """(S,) similarity of each set's name to the task; sets whose names are not descriptive get -1."""
    if know.set_embeddings is None or not task.strip():
        return np.full(len(know.set_names), -1.0)
    sim = text_similarity(task, know.set_embeddings)
    described = np.isin(know.set_collection, [COLLECTIONS.index(c) for c in _TEXT_COLLECTIONS])
    return np.where(described, sim, -1.0)


def _prior(members: sp.csr_matrix, set_sim: np.ndarray) -> np.ndarray:
    """(n,) text prior: top sets by similarity, weighted by their margin over the TOP_SETS-th, / sqrt(size)."""
    top = np.argsort(-set_sim, kind="stable")[:TOP_SETS]
    margin = np.clip(set_sim[top] - set_sim[top[-1]], 0.0, None) + 1e-3
    size = np.asarray(members[:, top].sum(0)).ravel()
    weights = margin / np.sqrt(np.maximum(size, 1.0))
    return np.asarray(members[:, top] @ weights).ravel()
