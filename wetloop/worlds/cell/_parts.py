"""A cocktail's outcome built from its parts: wild type plus single effects, plus pairwise effects.

Features of a cocktail: one indicator per (gene, level) clamp (the additive part) and, with `pairs`,
one per pair of clamps it holds together. A Bayesian linear regression on them, fitted to the
cocktails seen so far, predicts every other cocktail from the parts it shares with them (an unseen
part adds nothing to the mean and its prior spread to the uncertainty); draws from its posterior give
the ensemble. `pairs=False` is the additive baseline (wild type + the sum of single effects).
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
    """Bayesian linear regression on `parts_features`: each effect has a prior N(0, `prior_sd`^2), the
    noise sd is read off the residuals (at least `min_noise`), and `members` weight vectors drawn from
    the posterior make the ensemble. A part never seen keeps its prior spread, so a cocktail built from
    untested parts is uncertain, not predicted as the untreated cells with confidence."""

    def __init__(
        self,
        items: Sequence[str],
        levels: Sequence[str],
        pairs: bool = True,
        members: int = 64,
        prior_sd: float = 0.3,
        min_noise: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.items, self.levels, self.pairs = tuple(items), tuple(levels), pairs
        self.members, self.prior_sd, self.min_noise, self.seed = members, prior_sd, min_noise, seed
        self.coefs: np.ndarray | None = None  # (members, F + 1): intercept last

    def features(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        return parts_features(cocktails, self.items, self.levels, self.pairs)

    def fit(self, cocktails: Sequence[dict[str, str]], y: Sequence[float] | np.ndarray) -> PartsModel:
        X, y_arr = self.features(cocktails), np.asarray(y, dtype=float)
        if len(y_arr) == 0:
            raise ValueError("PartsModel.fit needs at least one observed cocktail")
        X = np.hstack([X, np.ones((len(y_arr), 1))])  # the last weight: the untreated level, around the mean seen
        base = y_arr.mean()
        prec = np.diag([1 / self.prior_sd**2] * (X.shape[1] - 1) + [1.0])
        noise = self.min_noise
        for _ in range(2):  # noise from the residuals of the posterior mean, then refit
            mean = np.linalg.solve(X.T @ X / noise**2 + prec, X.T @ (y_arr - base) / noise**2)
            resid = y_arr - base - X @ mean
            noise = max(self.min_noise, float(np.sqrt(np.mean(resid**2))))
        cov = np.linalg.inv(X.T @ X / noise**2 + prec)
        mean = np.linalg.solve(X.T @ X / noise**2 + prec, X.T @ (y_arr - base) / noise**2)
        rng = np.random.default_rng(self.seed)
        draws = rng.multivariate_normal(mean, (cov + cov.T) / 2, size=self.members - 1, method="cholesky")
        self.coefs = np.vstack([mean, draws])
        self.coefs[:, -1] += base
        return self

    def samples(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        """(members, n) predictions, clipped to [0, 1] (a fraction); member 0 is the posterior mean."""
        if self.coefs is None:
            raise RuntimeError("fit the PartsModel before predicting")
        X = self.features(cocktails)
        return np.clip(self.coefs[:, :-1] @ X.T + self.coefs[:, -1:], 0.0, 1.0)
