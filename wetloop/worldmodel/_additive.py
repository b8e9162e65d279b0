"""`AdditiveModel`: outcomes as the sum of each variable's own effect, a baseline for world models.

Where interventions combine (several variables, or a set of clamps), the simplest model of a new
combination adds up what each part does: outcome = intercept + sum over variables of f_v(value of v),
with no interaction. A numeric variable's effect is a cubic in its unit-scale value (Legendre
polynomials of degree 1-3), a choice has one effect per choice, and a set one effect per (item, level)
it holds. The effects are fitted by ridge regression, each output's ridge strength chosen by its
leave-one-out error; read as a Bayesian linear model, each output's noise is its leave-one-out
residual variance and a new intervention's predictive variance adds the weights' uncertainty there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.polynomial import legendre

from wetloop.campaign import CampaignSpec, Intervention

__all__ = ["AdditiveModel"]

ALPHAS = np.logspace(-3, 3, 13)


class _Fit(NamedTuple):
    x_mean: np.ndarray  # (F,)
    y_mean: np.ndarray  # (D,)
    weights: np.ndarray  # (F, D)
    inverses: np.ndarray  # (A, F, F): (X'X + alpha I)^-1 of the centred features, per ridge strength of ALPHAS
    best: np.ndarray  # (D,) each output's ridge strength (an index into ALPHAS)
    noise: np.ndarray  # (D,) each output's leave-one-out residual variance
    n: int


class AdditiveModel:
    """Intercept plus one effect per variable (see the module docstring). Fit on (n, D) outputs, sample (S, n, D)."""

    def __init__(self, spec: CampaignSpec, degree: int = 3) -> None:
        if why := self.not_applicable(spec):
            raise ValueError(f"no additive model of spec {spec.name!r}: {why}")
        self.spec, self.degree = spec, degree
        self._fit: _Fit | None = None

    @staticmethod
    def not_applicable(spec: CampaignSpec) -> str | None:
        """Why this spec's interventions have no parts to add up (None when they do)."""
        open_choices = [v.name for v in spec.interventions if v.kind == "categorical" and v.choices is None]
        if open_choices:
            return (
                f"each experiment picks one {open_choices[0]!r} from an open list: nothing combines, "
                "and an unseen choice has no learned effect to add"
            )
        if len(spec.interventions) == 1 and spec.interventions[0].kind == "categorical":
            return f"each experiment is one choice of {spec.interventions[0].name!r}: nothing combines"
        return None

    def features(self, interventions: Sequence[Intervention]) -> np.ndarray:
        """(n, F): per numeric variable its Legendre polynomials 1..degree of 2u - 1 (u its unit-scale value),
        per choice or set its indicator columns (`Variable.encode`)."""
        cols = []
        for v in self.spec.interventions:
            if v.is_numeric:
                u = np.array([v.to_unit(x.number(v.name)) for x in interventions], dtype=float)
                cols.append(legendre.legvander(2 * u - 1, self.degree)[:, 1:])
            else:
                cols.append(
                    np.array([v.encode(x.values[v.name]) for x in interventions], dtype=float).reshape(len(interventions), -1)
                )
        return np.hstack(cols)

    def fit(self, interventions: Sequence[Intervention], y: np.ndarray) -> AdditiveModel:
        """Fit the effects to outputs y (n, D), n >= 2."""
        X, y = self.features(interventions), np.asarray(y, dtype=float)
        if len(y) < 2:
            raise ValueError("the additive model needs at least two experiments to fit")
        x_mean, y_mean = X.mean(0), y.mean(0)
        Xc, yc = X - x_mean, y - y_mean
        inverses = np.stack([np.linalg.inv(Xc.T @ Xc + a * np.eye(X.shape[1])) for a in ALPHAS])  # (A, F, F)
        loo = np.stack([_loo_residuals(Xc, yc, inv) for inv in inverses])  # (A, n, D)
        best = (loo**2).mean(1).argmin(0)  # (D,): each output its own ridge strength
        columns = np.arange(y.shape[1])
        weights = (inverses @ Xc.T @ yc)[best, :, columns].T  # (F, D)
        self._fit = _Fit(x_mean, y_mean, weights, inverses, best, (loo[best, :, columns] ** 2).mean(1), len(y))
        return self

    def predict(self, interventions: Sequence[Intervention]) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation, each (n, D)."""
        if self._fit is None:
            raise RuntimeError("fit the AdditiveModel before predicting")
        f = self._fit
        Xc = self.features(interventions) - f.x_mean
        leverage = np.einsum("nf,afg,ng->na", Xc, f.inverses, Xc)[:, f.best] + 1.0 / f.n  # (n, D), the intercept's share too
        return Xc @ f.weights + f.y_mean, np.sqrt(f.noise[None, :] * (1.0 + leverage))

    def sample(self, interventions: Sequence[Intervention], samples: int = 64, seed: int = 0) -> np.ndarray:
        """(S, n, D) draws of the predictive distribution; one standard normal per draw and intervention is
        shared by all its outputs (a trajectory's draw is shifted as a whole, not made jagged)."""
        mean, sd = self.predict(interventions)
        eps = np.random.default_rng(seed).standard_normal((samples, len(mean), 1))
        return mean[None] + sd[None] * eps


def _loo_residuals(X: np.ndarray, y: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Leave-one-out residuals (n, D) of ridge regression of y (n, D) on X (n, F) (centred), by the hat matrix;
    `inverse` is (X'X + alpha I)^-1."""
    hat = X @ inverse @ X.T
    return (y - hat @ y) / np.clip(1.0 - np.diag(hat), 1e-6, None)[:, None]
