"""What the generic (any-world) models share: encoding interventions, robust input scaling,
identity hashes and the checks of a saved file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention

from ._ensemble import GaussianEnsemble
from .errors import ModelFileError, WorldModelError

__all__ = [
    "RobustEnsemble",
    "decode_interventions",
    "encode_interventions",
    "read_payload",
    "require_encodable",
    "spec_key",
    "weights_hash",
]


def require_encodable(spec: CampaignSpec, model: str) -> None:
    """Raise WorldModelError naming each variable the generic encoding cannot take (a categorical without choices)."""
    bad = [v.name for v in spec.interventions if v.kind == "categorical" and v.choices is None]
    if bad:
        raise WorldModelError(
            f"the {model} cannot encode categorical variable(s) {bad}: they have no `choices`, so there is no fixed "
            "one-hot column per value. List the choices in the spec, or give the world its own model "
            "(override World.new_model with a model that knows the names)"
        )


def encode_interventions(spec: CampaignSpec, interventions: Sequence[Intervention]) -> Tensor:
    """Interventions -> (n, d) float64, each variable's `Variable.encode` columns in spec order."""
    width = sum(v.width for v in spec.interventions)
    rows = []
    for iv in interventions:
        missing = [v.name for v in spec.interventions if v.name not in iv.values]
        if missing:
            raise WorldModelError(f"intervention {iv.describe()} lacks variable(s) {missing}; give every variable of the spec")
        rows.append([u for v in spec.interventions for u in v.encode(iv.values[v.name])])
    return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), width)


def decode_interventions(spec: CampaignSpec, X: Tensor) -> list[Intervention]:
    """Inverse of `encode_interventions`: (n, d) -> the nearest valid interventions (`Variable.decode`)."""
    width = sum(v.width for v in spec.interventions)
    if X.ndim != 2 or X.shape[-1] != width:
        raise WorldModelError(
            f"X must have shape (n, {width}) for the encoded variables {list(spec.variable_names)}, "
            f"got {tuple(X.shape)}; build it with the model's `encode`"
        )
    out = []
    for row in X.detach().double().tolist():
        values, col = {}, 0
        for v in spec.interventions:
            values[v.name], col = v.decode(row[col : col + v.width]), col + v.width
        out.append(Intervention(values=values))
    return out


class RobustEnsemble(GaussianEnsemble):
    """A `GaussianEnsemble` whose input scale has a floor: a column constant in training (one dose
    level tried so far, a choice never seen) would otherwise be divided by ~1e-6 and a new value
    would reach the network as a number in the millions. The floor is `floor_frac` of the column's
    largest magnitude, or 1 for a column of zeros."""

    floor_frac = 0.25
    beta = 0.5

    def loss(self, x: Tensor, y: Tensor, bound_weight: float = 0.01) -> Tensor:
        """beta-NLL (Seitzer et al. 2022): each point's Gaussian NLL weighted by its predicted variance^beta
        (no gradient through the weight). Plain NLL lets a member call a hard output noise (inflate its
        variance) instead of fitting its mean; the weight takes that escape away. Shapes: x (M, B, d_in),
        y (M, B, d_out), standardised. Returns a scalar."""
        mean, logvar = self(x)
        weight = (self.beta * logvar.detach()).exp()
        nll = 0.5 * ((y - mean) ** 2 * torch.exp(-logvar) + logvar)
        return (weight * nll).mean() + bound_weight * (self.max_logvar.sum() - self.min_logvar.sum())

    def set_normaliser(self, x: Tensor, y: Tensor) -> None:
        """Standardise with these training data. Shapes: x (N, d_in), y (N, d_out)."""
        super().set_normaliser(x, y)
        scale = x.abs().amax(0)
        floor = torch.where(scale > 0, self.floor_frac * scale, torch.ones_like(scale))
        self.x_std.copy_(torch.maximum(x.std(0).nan_to_num(0.0), floor.to(self.x_std)))
        self.y_std.copy_(y.std(0).nan_to_num(1.0).clamp_min(1e-6))  # one row has no spread: keep units


def weights_hash(config: Any, tensors: Iterable[tuple[str, Tensor]], extra: object = None) -> str:
    """12 hex digits over a pydantic config, named tensors and any extra repr: equal -> equal predictions."""
    h = hashlib.sha256(config.model_dump_json().encode())
    for name, tensor in sorted(tensors, key=lambda nt: nt[0]):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(extra).encode())
    return h.hexdigest()[:12]


def spec_key(spec: CampaignSpec, **extra: Any) -> str:
    """What a generic model's weights depend on in the spec: its variables (and what the caller adds)."""
    blob = {"variables": [v.model_dump(mode="json") for v in spec.interventions], **extra}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_payload(path: str | Path, fmt: str, what: str) -> dict[str, Any]:
    """A saved model's payload dict (torch.load, weights only), or ModelFileError saying what to do."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"no saved world model at {path}; check the path or fit a new model", path=path) from None
    except Exception as exc:  # torch raises several kinds for a corrupt or foreign file
        raise ModelFileError(f"{path} is not a readable torch file ({exc}); save the model again with `save`", path=path) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ModelFileError(f"{path} is not a wetloop {what} (format {fmt!r}); load it with the class that saved it", path=path)
    return payload


def check_key(payload: dict[str, Any], key: str, path: str | Path, what: str) -> None:
    """ModelFileError when a payload was fitted for another spec (variables, series or readouts differ)."""
    if payload.get("key") != key:
        raise ModelFileError(
            f"{path} was fitted for another campaign: its {what} differ from this spec's; refit the model on this "
            "campaign's data",
            path=path,
        )
