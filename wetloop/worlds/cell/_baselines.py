"""Baselines for every output of a cocktail at once (each fate's share, each gene's mean trajectory).

`AdditiveOutcome`: wild type plus the sum of single-clamp effects, per output: the additive
`PartsModel` (Bayesian linear regression on `parts_features(pairs=False)`) for many outputs, each with
its own residual noise. `MeanOutcome`: the outputs of the cocktails seen, whatever the cocktail.
Both return predictive samples (members, n, outputs): for the additive model, posterior draws of the
effects plus the residual noise (where an experiment's outcome should fall, misfit included); for the
mean, the outcomes seen themselves (their mean is the prediction, their spread the interval).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._parts import parts_features

__all__ = ["AdditiveOutcome", "MeanOutcome"]


class AdditiveOutcome:
    """Each output = its mean seen + the sum of its single-clamp effects, each effect with a prior
    N(0, `prior_sd`^2); the noise sd of each output is read off its residuals (at least `min_noise`)."""

    def __init__(
        self,
        items: Sequence[str],
        levels: Sequence[str],
        members: int = 64,
        prior_sd: float = 0.3,
        min_noise: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.items, self.levels = tuple(items), tuple(levels)
        self.members, self.prior_sd, self.min_noise, self.seed = members, prior_sd, min_noise, seed
        self.mean: np.ndarray | None = None  # (F + 1, D): intercept last
        self.chol: np.ndarray | None = None  # (D, F + 1, F + 1): posterior covariance factor per output
        self.noise: np.ndarray | None = None  # (D,)

    def _design(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        x = parts_features(cocktails, self.items, self.levels, pairs=False)
        return np.hstack([x, np.ones((len(x), 1))])

    def fit(self, cocktails: Sequence[dict[str, str]], y: np.ndarray) -> AdditiveOutcome:
        """`y` (n, outputs): the outcomes of `cocktails`."""
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(y) != len(cocktails) or len(y) == 0:
            raise ValueError(f"y must be (cocktails, outputs) with one row per cocktail ({len(cocktails)}), got {y.shape}")
        X = self._design(cocktails)
        base = y.mean(0)
        prec = np.diag([1 / self.prior_sd**2] * (X.shape[1] - 1) + [1.0])
        xtx, xty = X.T @ X, X.T @ (y - base)
        noise = np.full(y.shape[1], self.min_noise)
        for _ in range(2):  # noise from the residuals of the posterior mean, then refit
            a = xtx[None] / noise[:, None, None] ** 2 + prec[None]  # (D, F+1, F+1)
            mean = np.linalg.solve(a, (xty.T / noise[:, None] ** 2)[..., None])[..., 0]  # (D, F+1)
            resid = y - base - X @ mean.T
            noise = np.maximum(self.min_noise, np.sqrt(np.mean(resid**2, 0)))
        a = xtx[None] / noise[:, None, None] ** 2 + prec[None]
        mean = np.linalg.solve(a, (xty.T / noise[:, None] ** 2)[..., None])[..., 0]
        cov = np.linalg.inv(a)
        self.chol = np.linalg.cholesky((cov + cov.transpose(0, 2, 1)) / 2)
        mean[:, -1] += base
        self.mean, self.noise = mean.T, noise
        return self

    def predict(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        """(n, outputs): the posterior mean."""
        if self.mean is None:
            raise RuntimeError("fit the AdditiveOutcome before predicting")
        return self._design(cocktails) @ self.mean

    def samples(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        """(members, n, outputs): posterior draws of the effects plus residual noise; member 0 is the mean."""
        if self.mean is None or self.chol is None or self.noise is None:
            raise RuntimeError("fit the AdditiveOutcome before predicting")
        rng = np.random.default_rng(self.seed)
        X = self._design(cocktails)
        z = rng.standard_normal((self.members - 1, *self.mean.T.shape))  # (S, D, F+1)
        w = self.mean.T[None] + np.einsum("dij,sdj->sdi", self.chol, z)  # (S, D, F+1)
        draws = np.einsum("nf,sdf->snd", X, w) + self.noise * rng.standard_normal((self.members - 1, len(X), len(self.noise)))
        return np.concatenate([self.predict(cocktails)[None], draws])


class MeanOutcome:
    """The outcomes seen, whatever the cocktail: their mean predicts, their spread is the interval."""

    def __init__(self) -> None:
        self.seen: np.ndarray | None = None

    def fit(self, cocktails: Sequence[dict[str, str]], y: np.ndarray) -> MeanOutcome:
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(y) != len(cocktails) or len(y) == 0:
            raise ValueError(f"y must be (cocktails, outputs) with one row per cocktail ({len(cocktails)}), got {y.shape}")
        self.seen = y
        return self

    def samples(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        """(cocktails seen, n, outputs)."""
        if self.seen is None:
            raise RuntimeError("fit the MeanOutcome before predicting")
        return np.broadcast_to(self.seen[:, None, :], (len(self.seen), len(cocktails), self.seen.shape[1]))
