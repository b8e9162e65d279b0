"""Acquisition functions over an ensemble world model: information gain, expected improvement, cost.

Each is a BoTorch `AcquisitionFunction`: `forward(X)` takes X (b, q, d), b t-batches of q
candidates each, and returns (b,) scores, one per joint q-batch. Each supports `X_pending`
(concatenated into every t-batch), so `optimize_acqf_discrete` can build a batch greedily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.monte_carlo import MCAcquisitionFunction
from botorch.acquisition.objective import MCAcquisitionObjective
from botorch.models.model import Model
from botorch.utils.transforms import concatenate_pending_points, t_batch_mode_transform
from torch import Tensor

from ._menu import EnsembleEnumerationSampler, ensemble_shape, menu_statistic, posterior_values
from ._protocols import OutcomeLike
from .errors import WorldModelMismatch

__all__ = [
    "CostWeightedAcquisition",
    "EnsembleExpectedImprovement",
    "EnsembleInformationGain",
    "ReadoutObjective",
    "ensemble_information_gain",
    "information_gain",
    "member_grams",
]


def member_grams(samples: Tensor, members: int, particles: int, aleatoric_floor: float) -> Tensor:
    """Each candidate's contribution to the information Gram matrix: (..., S, q, T) -> (..., q, M, M).

    T counts the numbers observed per candidate: time points of raw samples, or IG features.

    For candidate j: Z_j = (mu_j - mean over members of mu_j) / sqrt(M * sigma^2_j), shape (M, T),
    where mu_j (M, T) are the members' means over particles and sigma^2_j (T) the mean over members
    of the within-member variance, floored at `aleatoric_floor`^2; its Gram is Z_j Z_j^T.
    """
    *batch, _, q, t = samples.shape
    y = samples.reshape(*batch, members, particles, q, t)
    mu = y.mean(-3)  # (..., M, q, T)
    aleatoric = y.var(-3, correction=0).mean(-3).clamp_min(aleatoric_floor**2)  # (..., q, T)
    z = (mu - mu.mean(-3, keepdim=True)) / (aleatoric.unsqueeze(-3) * members).sqrt()  # (..., M, q, T)
    z = z.movedim(-2, -3)  # (..., q, M, T)
    return z @ z.transpose(-1, -2)  # (..., q, M, M)


def information_gain(grams: Tensor) -> Tensor:
    """0.5 * logdet(I_M + sum over the batch of the candidates' Grams): (..., q, M, M) -> (...) in nats."""
    total = grams.sum(-3)
    eye = torch.eye(total.shape[-1], dtype=total.dtype, device=total.device)
    chol = torch.linalg.cholesky(eye + total)  # I + A^T A is positive definite
    return chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # 0.5 * logdet = sum of log diag(L)


def ensemble_information_gain(samples: Tensor, members: int, particles: int, aleatoric_floor: float) -> Tensor:
    """Gaussian approximation of the mutual information between a batch's observations and the model.

    Shapes: samples (..., S, q, T) with S = members * particles, member-major -> (...) in nats.

    Stack the q trajectories into one vector y of length K = q * T. Member m predicts mean mu_m
    (its mean over particles); the aleatoric variance sigma^2_k is the mean over members of the
    within-member variance at k, floored at `aleatoric_floor`^2. Modelling y = f + e with
    f ~ N(mean of mu_m, Sigma_epi), Sigma_epi = (1/M) sum_m c_m c_m^T (c_m = mu_m - mean of mu), and
    e ~ N(0, diag sigma^2):

        I(y; model) = 0.5 logdet(I_K + D^-1/2 Sigma_epi D^-1/2) = 0.5 logdet(I_M + A^T A),
        A = D^-1/2 [c_1 ... c_M] / sqrt(M)    (K x M; Sylvester's identity gives the M x M form).

    A^T A is a sum over the K coordinates, hence over candidates: the sum of `member_grams`. Two
    candidates on which the members disagree in the same pattern add to the same direction (log
    growth); two that disagree in different patterns add new directions, so the joint value
    rewards diverse batches. Time points are treated as independent given the model, which
    overstates the information in a densely sampled trajectory; the logdet grows only with its log.
    """
    return information_gain(member_grams(samples, members, particles, aleatoric_floor))


class EnsembleInformationGain(AcquisitionFunction):
    """Information gain about an ensemble world model from observing a q-batch (nats).

    BoTorch's BALD needs a fully Bayesian model; this is its deep-ensemble counterpart, a Gaussian
    approximation of the disagreement between members (see `ensemble_information_gain`). The model
    must be an ensemble model with int attributes `members` and `particles` whose posterior has
    `values` (b, S, q, D). `features` maps samples (..., D) to the K numbers IG is measured on
    (..., K), e.g. `ReadoutFeatures` (readouts in units of their noise floors, with
    `aleatoric_floor` 1.0); None measures it on the raw D outputs. On a `MenuModel` each
    candidate's Gram is computed once and reused.
    """

    def __init__(
        self,
        model: Model,
        aleatoric_floor: float = 5.0,
        X_pending: Tensor | None = None,
        features: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__(model=model)
        self.members, self.particles = ensemble_shape(model)
        self.aleatoric_floor, self.features = aleatoric_floor, features
        self.set_X_pending(X_pending)

    @concatenate_pending_points
    @t_batch_mode_transform()  # type: ignore[arg-type]  # BoTorch types the decorated method's self as AcquisitionFunction
    def forward(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> information gain (b,) of observing the q candidates' outcomes jointly."""
        key = ("member_grams", self.aleatoric_floor, id(self.features))
        grams = menu_statistic(self.model, X, key, self._grams)  # (b, q, M, M)
        if grams is None:
            grams = self._grams(posterior_values(self.model, X))
        return information_gain(grams)

    def _grams(self, samples: Tensor) -> Tensor:
        """samples (..., S, q, D) -> Grams (..., q, M, M), on the features when there are some."""
        values = samples if self.features is None else self.features(samples)
        return member_grams(values, self.members, self.particles, self.aleatoric_floor)


class ReadoutObjective(MCAcquisitionObjective):
    """Maps world-model samples to the utility of one readout: samples (..., q, D) -> (..., q).

    `outcome.readouts` turns each sample (a trajectory, or a scalar model's readouts) into readouts; `utility` (e.g. the spec's
    `objective.utility`, which is elementwise and so works on tensors) makes it a number to maximise.
    """

    def __init__(self, outcome: OutcomeLike, readout: str, utility: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.outcome, self.readout, self.utility = outcome, readout, utility

    def forward(self, samples: Tensor, X: Tensor | None = None) -> Tensor:
        readouts = self.outcome.readouts(samples)
        if self.readout not in readouts:
            raise WorldModelMismatch(
                f"the world model's outcome gives readouts {sorted(readouts)} but not the objective's "
                f"{self.readout!r}; fix the spec's objective.readout or teach the outcome model that readout",
                world=self.outcome,
            )
        return self.utility(readouts[self.readout])


class EnsembleExpectedImprovement(MCAcquisitionFunction):
    """Joint expected improvement of a q-batch over `best_f`, exact over the ensemble's samples.

    qEI(X) = mean over s of max(max_j u(y_sj) - best_f, 0), y_sj the s-th sampled trajectory of
    candidate j and u the objective (BoTorch's qExpectedImprovement, reduced the same way: max
    over q, mean over samples). Samples come from `EnsembleEnumerationSampler`, which enumerates
    all S = members * particles samples, so the mean is the exact expectation under the ensemble
    rather than a Monte Carlo draw from it. On a `MenuModel` each candidate's objective samples
    (S,) are computed once and reused.
    """

    best_f: Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(self, model: Model, best_f: float, objective: MCAcquisitionObjective, X_pending: Tensor | None = None) -> None:
        super().__init__(model=model, sampler=EnsembleEnumerationSampler(), objective=objective, X_pending=X_pending)
        self.register_buffer("best_f", torch.as_tensor(float(best_f), dtype=torch.float64))

    @concatenate_pending_points
    @t_batch_mode_transform()  # type: ignore[arg-type]  # BoTorch types the decorated method's self as AcquisitionFunction
    def forward(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> expected improvement (b,) of the batch's best member over best_f."""
        obj = self._objective_samples(X)  # (S, b, q)
        return (obj.amax(-1) - self.best_f.to(obj)).clamp_min(0).mean(0)

    def _objective_samples(self, X: Tensor) -> Tensor:
        """Objective value of every sample: X (b, q, d) -> (S, b, q)."""
        cached = menu_statistic(self.model, X, ("objective", id(self.objective)), self._per_candidate)
        if cached is not None:
            return cached.movedim(-1, 0)  # (b, q, S) -> (S, b, q)
        return self._get_samples_and_objectives(X)[1]

    def _per_candidate(self, samples: Tensor) -> Tensor:
        """samples (S, n, D) -> objective (n, S)."""
        return self.objective(samples.unsqueeze(1)).squeeze(1).transpose(0, 1)


class CostWeightedAcquisition(AcquisitionFunction):
    """Value per unit of cost: V(X) / cost(X), with V = sum_i w_i * a_i and cost(X) the batch's total cost.

    `cost` is a number (every experiment costs the same) or a function X (..., q, d) -> (..., q) of
    per-candidate costs (`MenuCost`). With pending points P (the greedy loop's earlier picks), the
    value is what X adds to them per unit of X's own cost: (V(X + P) - V(P)) / cost(X), the
    cost-effective greedy rule (BoTorch's `InverseCostWeightedUtility` also divides a gain over
    the current value by cost). Dividing the joint V(X + P) by the joint cost instead would prefer
    a cheap candidate that adds nothing over a dearer one that adds much, since it dilutes the
    batch's ratio least. With equal costs both rules pick the same points. Terms with weight 0 are
    not evaluated.
    """

    def __init__(
        self,
        model: Model,
        terms: Sequence[tuple[float, AcquisitionFunction]],
        cost: float | Callable[[Tensor], Tensor],
        X_pending: Tensor | None = None,
    ) -> None:
        super().__init__(model=model)
        kept = [(float(w), acq) for w, acq in terms if w != 0.0]
        self.weights = [w for w, _ in kept]
        self.terms = torch.nn.ModuleList(acq for _, acq in kept)
        self.cost = cost
        self.set_X_pending(X_pending)

    @t_batch_mode_transform()  # type: ignore[arg-type]  # BoTorch types the decorated method's self as AcquisitionFunction
    def forward(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> cost-weighted acquisition (b,)."""
        pending = self.X_pending
        if pending is None:
            return self._value(X) / self._cost(X)
        joint = torch.cat([X, pending.to(X).expand(*X.shape[:-2], *pending.shape)], dim=-2)
        return (self._value(joint) - self._value(pending.to(X).unsqueeze(0))) / self._cost(X)

    def _value(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> weighted sum of the terms (b,)."""
        return sum(w * acq(X) for w, acq in zip(self.weights, self.terms))

    def _cost(self, X: Tensor) -> Tensor:
        """X (b, q, d) -> total cost of each t-batch (b,)."""
        if callable(self.cost):
            return self.cost(X).to(X).sum(-1)
        return torch.full(X.shape[:-2], float(self.cost) * X.shape[-2], dtype=X.dtype, device=X.device)
