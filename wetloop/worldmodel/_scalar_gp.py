"""The GP family of the scalar model: one BoTorch GP over every readout, shown as an `EnsembleModel`.

The planner consumes ensembles, so the GP is exposed as one: `forward(X)` returns seeded draws,
members = draws of the latent function (joint over the points), particles = observation-noise draws
of each, so the draws are of what the lab would report, like the deep ensemble's particles.

Categorical and set variables go to `MixedSingleTaskGP`'s categorical kernel: the one-hot columns of
`Variable.encode` are folded into one integer column per categorical variable (the chosen index) and
one per set item (0 = not chosen, 1 + level index), so the kernel compares choices, not corners of a
one-hot cube. With only numeric variables it is a `SingleTaskGP` on the unit cube.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from botorch.exceptions.warnings import InputDataWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.ensemble import EnsembleModel
from botorch.models.transforms.outcome import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from wetloop.campaign import CampaignSpec

__all__ = ["GPDrawsModel", "GPInputs", "fit_gp", "new_gp"]


@dataclass(frozen=True)
class GPInputs:
    """Folds `Variable.encode` columns (..., d) into the GP's columns (..., d_gp); `cat_dims` index the integer ones."""

    groups: tuple[tuple[str, int, int], ...]  # (kind, first column, width) per GP column: "num", "cat" or "item"
    cat_dims: tuple[int, ...]

    @classmethod
    def of(cls, spec: CampaignSpec) -> GPInputs:
        groups, col = [], 0
        for v in spec.interventions:
            if v.is_numeric:
                groups.append(("num", col, 1))
            elif v.kind == "categorical":
                groups.append(("cat", col, v.width))
            else:
                groups += [("item", col + i * len(v.levels), len(v.levels)) for i in range(len(v.items or ()))]
            col += v.width
        return cls(tuple(groups), tuple(i for i, g in enumerate(groups) if g[0] != "num"))

    def __call__(self, X: Tensor) -> Tensor:
        """Shapes: X (..., d) encoded -> (..., d_gp), X's dtype."""
        cols = [self._column(X, kind, start, width) for kind, start, width in self.groups]
        return torch.stack(cols, dim=-1)

    @staticmethod
    def _column(X: Tensor, kind: str, start: int, width: int) -> Tensor:
        block = X[..., start : start + width]
        if kind == "num":
            return block[..., 0]
        index = block.argmax(-1).to(X.dtype)
        return index if kind == "cat" else torch.where(block.amax(-1) > 0.5, index + 1, torch.zeros_like(index))


def new_gp(inputs: GPInputs, x: Tensor, y: Tensor) -> SingleTaskGP:
    """An unfitted GP on training data. Shapes: x (N, d_gp), y (N, R), float64."""
    transform = Standardize(m=y.shape[-1])
    with warnings.catch_warnings():
        # BoTorch checks the data before the Standardize transform applies; a readout constant so far
        # (a safety event never seen) has std 0 and would warn on every refit
        warnings.simplefilter("ignore", InputDataWarning)
        if inputs.cat_dims:
            return MixedSingleTaskGP(x, y, cat_dims=list(inputs.cat_dims), outcome_transform=transform)
        return SingleTaskGP(x, y, outcome_transform=transform)


def fit_gp(gp: SingleTaskGP, seed: int) -> float:
    """Fit hyperparameters by marginal likelihood (seeded: restarts draw from torch's generator). Returns the final MLL."""
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore")  # few points make L-BFGS warn about its stopping rule; the fit is still used
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 100}})  # bounded: a planner waits on it
    gp.train()  # the marginal likelihood is of the training data, which gpytorch evaluates in train mode
    with torch.no_grad():
        value = float(mll(gp(*gp.train_inputs), gp.train_targets).mean())
    gp.eval()
    return value


class GPDrawsModel(EnsembleModel):
    """Posterior draws of a GP as an ensemble. forward: X (batch..., q, d) encoded -> (batch..., S, q, R)
    readout units, S = members * particles, member-major, seeded.

    Each member is one draw of the latent function (joint over the q points): the spread between
    members is the GP's epistemic uncertainty, so the planner's ensemble-disagreement information
    gain means for a GP what it means for the deep ensemble. Each member's particles add the GP's
    observation noise, so the samples are of what the lab would report.
    Attributes: `members`, `particles`, `times_min` (R zeros: a readout has no time).
    """

    def __init__(self, gp: SingleTaskGP, inputs: GPInputs, members: int, particles: int, seed: int) -> None:
        super().__init__()
        self.gp, self.inputs, self.seed = gp, inputs, seed
        self.members, self.particles = members, particles
        self._num_outputs = gp.num_outputs
        self.times_min: tuple[float, ...] = (0.0,) * gp.num_outputs

    def forward(self, X: Tensor) -> Tensor:
        """X (batch..., q, d) -> (batch..., S, q, R)."""
        Xg = self.inputs(X.double())
        latent = self.gp.posterior(Xg)
        noise_var = (self.gp.posterior(Xg, observation_noise=True).variance - latent.variance).clamp_min(0.0)
        with torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)  # jitter added to a near-singular covariance: expected, handled
            torch.manual_seed(self.seed)  # the same X gives the same draws, so a ranking is reproducible
            f = latent.rsample(torch.Size([self.members]))  # (M, batch..., q, R)
            eps = torch.randn(self.members, self.particles, *f.shape[1:], dtype=f.dtype)
        draws = f[:, None] + noise_var.sqrt() * eps  # (M, P, batch..., q, R)
        return draws.reshape(-1, *f.shape[1:]).movedim(0, -3).to(X)
