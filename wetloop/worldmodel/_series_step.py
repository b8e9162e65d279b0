"""One step of the series dynamics, for every member at once: an MLP step or a neural-ODE step.

`mlp`: the member maps (state, inputs) to a Gaussian over the state change of one grid interval
(PETS). `ode`: the member's mean is a vector field dz/dtau over the interval (tau from 0 to 1, the
inputs held), integrated by fixed-step Runge-Kutta (torchdiffeq, the optional extra `ode`), so a
step is the flow of a smooth field rather than an arbitrary jump; its log-variance is the head's at
the step's start. Both return state units: delta (M, B, s) and log-variance (M, B, s).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from ._ensemble import GaussianEnsemble
from .errors import WorldModelError

__all__ = ["DynamicsKind", "require_ode", "step"]

DynamicsKind = Literal["mlp", "ode"]


def require_ode() -> Any:
    """torchdiffeq's `odeint`, or WorldModelError naming the extra that provides it."""
    try:
        from torchdiffeq import odeint
    except ImportError as exc:
        raise WorldModelError(
            "the series model's neural-ODE dynamics (dynamics: ode) need torchdiffeq: install the extra "
            "with `pip install 'wetloop[ode]'`, or use dynamics: mlp"
        ) from exc
    return odeint


def _head(ens: GaussianEnsemble, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Standardised (mean, logvar) of the members at states z (M, B, s) under inputs u (M, B, C)."""
    return ens(ens.standardise_x(torch.cat([z, u], dim=-1)))


def step(ens: GaussianEnsemble, kind: str, z: Tensor, u: Tensor, substeps: int = 2) -> tuple[Tensor, Tensor]:
    """State change over one interval and its log-variance, state units. Shapes: z (M, B, s), u (M, B, C)
    -> delta (M, B, s), logvar (M, B, s). Differentiable (training unrolls it)."""
    mean, logvar = _head(ens, z, u)
    logvar = logvar + 2.0 * ens.y_std.log()
    if kind == "mlp":
        return mean * ens.y_std + ens.y_mean, logvar
    odeint = require_ode()

    def field(_t: Tensor, state: Tensor) -> Tensor:
        return _head(ens, state, u)[0] * ens.y_std + ens.y_mean

    # the first evaluation is the head above; the solver evaluates again (cheap at these sizes)
    tau = torch.linspace(0.0, 1.0, substeps + 1, dtype=z.dtype)
    end = odeint(field, z, tau, method="rk4")[-1]
    return end - z, logvar
