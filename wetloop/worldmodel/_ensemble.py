"""The pure-torch ensemble: M probabilistic MLPs in one vectorised module (tensors in, loss out).

As in TD-MPC2, every layer holds all members' weights in one tensor (M, in, out) and runs them in
one `torch.baddbmm`; as in PETS, each member outputs a Gaussian (mean, log-variance with learned
soft bounds) and is trained by Gaussian negative log-likelihood on its own bootstrap resample.
Inputs and targets are standardised with training statistics kept as buffers, so the state dict
alone restores the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EnsembleLinear", "GaussianEnsemble", "TrainRecord", "train_ensemble"]


class EnsembleLinear(nn.Module):
    """M independent linear layers. weight (M, d_in, d_out), bias (M, 1, d_out)."""

    def __init__(self, members: int, d_in: int, d_out: int, generator: torch.Generator) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # PyTorch's default Linear init, drawn per member from the seed
        self.weight = nn.Parameter((torch.rand(members, d_in, d_out, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(members, 1, d_out, generator=generator) * 2 - 1) * bound)

    def forward(self, x: Tensor) -> Tensor:
        """x (M, B, d_in) -> (M, B, d_out)."""
        return torch.baddbmm(self.bias, x, self.weight)


class GaussianEnsemble(nn.Module):
    """M members mapping standardised features to a Gaussian over the standardised target.

    forward(x: (M, B, d_in)) -> (mean, logvar), each (M, B, d_out).
    """

    x_mean: Tensor  # buffers (registered in __init__), declared for the type checker
    x_std: Tensor
    y_mean: Tensor
    y_std: Tensor

    def __init__(self, members: int, d_in: int, d_out: int, hidden: int, layers: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        sizes = [d_in] + [hidden] * layers
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b, g) for a, b in zip(sizes, sizes[1:]))
        self.head = EnsembleLinear(members, hidden, 2 * d_out, g)
        self.max_logvar = nn.Parameter(torch.full((1, 1, d_out), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, d_out), -10.0))
        for name, size in (("x_mean", d_in), ("x_std", d_in), ("y_mean", d_out), ("y_std", d_out)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))
        self.members, self.d_in, self.d_out = members, d_in, d_out

    def set_normaliser(self, x: Tensor, y: Tensor) -> None:
        """Standardise with these training data. Shapes: x (N, d_in), y (N, d_out)."""
        self.x_mean.copy_(x.mean(0))
        self.x_std.copy_(x.std(0).clamp_min(1e-6))  # constant features (e.g. one regimen) stay finite
        self.y_mean.copy_(y.mean(0))
        self.y_std.copy_(y.std(0).clamp_min(1e-6))

    @property
    def first_layer(self) -> EnsembleLinear:
        """The first hidden layer: rollouts split its weight into a state part and a known-input part."""
        return cast(EnsembleLinear, self.hidden[0])  # a ModuleList types its items as Module

    def trunk(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """From the first layer's pre-activation (M, B, hidden) to (mean, logvar), each (M, B, d_out).

        Split from `forward` so rollouts can add a precomputed input part to the first layer.
        """
        h = F.silu(pre)
        for layer in self.hidden[1:]:
            h = F.silu(layer(h))
        mean, raw = self.head(h).chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)  # PETS' soft bounds
        return mean, self.min_logvar + F.softplus(logvar - self.min_logvar)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (M, B, d_in) standardised -> (mean, logvar), each (M, B, d_out), standardised target units."""
        return self.trunk(self.hidden[0](x))

    def loss(self, x: Tensor, y: Tensor, bound_weight: float = 0.01) -> Tensor:
        """Gaussian NLL (constant dropped), mean over members, rows, outputs; plus the pull on the bounds.

        Shapes: x (M, B, d_in), y (M, B, d_out), both standardised. Returns a scalar.
        """
        mean, logvar = self(x)
        nll = 0.5 * ((y - mean) ** 2 * torch.exp(-logvar) + logvar).mean()
        return nll + bound_weight * (self.max_logvar.sum() - self.min_logvar.sum())

    def standardise_x(self, x: Tensor) -> Tensor:
        return (x - self.x_mean) / self.x_std


@dataclass(frozen=True)
class TrainRecord:
    """What training did: epochs run, gradient steps, and the mean loss of each epoch."""

    epochs: int
    steps: int
    losses: tuple[float, ...]


def _bootstrap(members: int, groups: Tensor, g: torch.Generator) -> Tensor:
    """Each member's resample of row indices. Shapes: groups (n,) integer ids -> (M, n).

    Whole groups (days) are drawn with replacement, then n rows from the chosen groups' rows, so
    a member trained on one half of the regimens disagrees with one trained on the other half;
    with every row its own group this is PETS' row bootstrap.
    """
    ids, inverse = groups.unique(return_inverse=True)
    picks = torch.randint(len(ids), (members, len(ids)), generator=g)
    counts = torch.zeros(members, len(ids)).scatter_add_(1, picks, torch.ones_like(picks, dtype=torch.float))
    return torch.multinomial(counts[:, inverse], len(groups), replacement=True, generator=g)


def train_ensemble(
    model: GaussianEnsemble,
    x: Tensor,
    y: Tensor,
    *,
    groups: Tensor | None = None,
    epochs: int,
    min_steps: int = 0,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    bound_weight: float = 0.01,
    seed: int = 0,
) -> TrainRecord:
    """Fit every member on its own bootstrap resample of (x, y) with AdamW; deterministic given `seed`.

    Shapes: x (N, d_in), y (N, d_out), raw units (standardised here); groups (N,) ids of the rows'
    days for a day bootstrap (None: rows are resampled one by one). Epochs are raised until at
    least `min_steps` gradient steps run, so a first round with four days still trains properly.
    """
    g = torch.Generator().manual_seed(seed + 1)
    model.set_normaliser(x, y)
    xs, ys = model.standardise_x(x), (y - model.y_mean) / model.y_std
    boot = _bootstrap(model.members, torch.arange(len(x)) if groups is None else groups, g)
    per_epoch = math.ceil(len(x) / batch_size)
    epochs = max(epochs, math.ceil(min_steps / per_epoch))
    opt, sched = _optimiser(model, lr, weight_decay, epochs * per_epoch)
    model.train()
    losses = tuple(_epoch(model, opt, sched, xs, ys, boot, batch_size, bound_weight, g) for _ in range(epochs))
    model.eval()
    return TrainRecord(epochs=epochs, steps=epochs * per_epoch, losses=losses)


def _optimiser(model: GaussianEnsemble, lr: float, weight_decay: float, steps: int) -> tuple[Any, Any]:
    """AdamW with decay on the weight matrices only (not biases, not the log-variance bounds); cosine schedule."""
    decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
    rest = [p for name, p in model.named_parameters() if not name.endswith("weight")]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)


def _epoch(
    model: GaussianEnsemble,
    opt: Any,
    sched: Any,
    xs: Tensor,
    ys: Tensor,
    boot: Tensor,
    batch_size: int,
    bound_weight: float,
    g: torch.Generator,
) -> float:
    """One pass over every member's resample, in a fresh order. Returns the mean loss of the pass."""
    n = boot.shape[1]
    order = boot.gather(1, torch.rand(boot.shape, generator=g).argsort(dim=1))
    total = 0.0
    for i in range(0, n, batch_size):
        idx = order[:, i : i + batch_size]  # (M, b): each member's own rows
        loss = model.loss(xs[idx], ys[idx], bound_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * idx.shape[1]
    return total / n
