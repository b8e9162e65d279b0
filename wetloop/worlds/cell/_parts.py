"""A cocktail's outcome built from its parts: wild type plus single effects, plus pairwise effects.

Features of a cocktail: one indicator per (gene, level) clamp (the additive part) and, with `pairs`,
one per pair of clamps it holds together. A ridge regression on them, fitted to the cocktails seen
so far, predicts every other cocktail from the parts it shares with them (an unseen pair adds
nothing: its weight stays at the prior 0); a bootstrap ensemble of such fits gives the spread.
`pairs=False` is the additive baseline (wild type + the sum of single effects).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["PartsModel", "parts_features"]


def parts_features(cocktails: Sequence[dict[str, str]], items: Sequence[str], levels: Sequence[str], pairs: bool) -> np.ndarray:
    """(n, F) indicators: each (item, level) clamp, then (with `pairs`) each pair of clamps of two items."""
    singles = [(i, lv) for i in items for lv in levels]
    index = {s: k for k, s in enumerate(singles)}
    pair_index = {p: k for k, p in enumerate(q for q in itertools.combinations(singles, 2) if q[0][0] != q[1][0])}
    width = len(singles) + (len(pair_index) if pairs else 0)
    out = np.zeros((len(cocktails), width))
    for r, c in enumerate(cocktails):
        clamps = sorted(((g, lv) for g, lv in c.items()), key=lambda s: index[s])
        for s in clamps:
            out[r, index[s]] = 1.0
        if pairs:
            for a, b in itertools.combinations(clamps, 2):
                out[r, len(singles) + pair_index[(a, b)]] = 1.0
    return out


class PartsModel:
    """Ridge regression on `parts_features`, bootstrapped `members` times (see the module docstring)."""

    def __init__(
        self,
        items: Sequence[str],
        levels: Sequence[str],
        pairs: bool = True,
        members: int = 32,
        alpha: float = 0.3,
        seed: int = 0,
    ) -> None:
        self.items, self.levels, self.pairs = tuple(items), tuple(levels), pairs
        self.members, self.alpha, self.seed = members, alpha, seed
        self.coefs: np.ndarray | None = None  # (members, F + 1): intercept last

    def features(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        return parts_features(cocktails, self.items, self.levels, self.pairs)

    def fit(self, cocktails: Sequence[dict[str, str]], y: Sequence[float] | np.ndarray) -> PartsModel:
        X, y_arr = self.features(cocktails), np.asarray(y, dtype=float)
        if len(y_arr) == 0:
            raise ValueError("PartsModel.fit needs at least one observed cocktail")
        rng = np.random.default_rng(self.seed)
        coefs = []
        for m in range(self.members):
            rows = np.arange(len(y_arr)) if m == 0 else rng.integers(0, len(y_arr), len(y_arr))
            coefs.append(self._ridge(X[rows], y_arr[rows]))
        self.coefs = np.stack(coefs)
        return self

    def _ridge(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ridge with an unpenalised intercept (the wild type's level when no clamp is seen)."""
        x_mean, y_mean = X.mean(0), y.mean()
        Xc = X - x_mean
        w = np.linalg.solve(Xc.T @ Xc + self.alpha * np.eye(X.shape[1]), Xc.T @ (y - y_mean))
        return np.append(w, y_mean - x_mean @ w)

    def samples(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        """(members, n) predictions, clipped to [0, 1] (a fraction)."""
        if self.coefs is None:
            raise RuntimeError("fit the PartsModel before predicting")
        X = self.features(cocktails)
        return np.clip(self.coefs[:, :-1] @ X.T + self.coefs[:, -1:], 0.0, 1.0)
