"""The safety filter: candidates predicted to break a safety limit are removed before ranking."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Proposal, SafetyLimit, SafetyRemoval, unsafe_readout_name

from .errors import WorldModelMismatch

__all__ = ["p_unsafe", "safety_removals", "outside_start"]

_SERIES_UNITS = {"glucose": "mg/dL"}


def p_unsafe(readouts: dict[str, Tensor], limits: Sequence[SafetyLimit], n: int, world: object = None) -> Tensor:
    """P(event) per candidate and limit: the mean over samples of each limit's 0/1 event readout.

    Shapes: readouts[name] (S, n) -> (n, L), L = len(limits), columns in `limits` order.
    """
    columns = [torch.zeros(n, dtype=torch.float64)]  # a column of zeros keeps (n, 0) limits well shaped
    for limit in limits:
        name = unsafe_readout_name(limit)
        if name not in readouts:
            raise WorldModelMismatch(
                f"the world model's outcome gives no {name!r} readout, so the planner cannot predict the safety "
                f"limit {limit.name!r} ({limit.series} < {limit.below:g}); give the outcome model that readout "
                "or remove the limit from the spec",
                world=world,
            )
        columns.append(readouts[name].double().mean(0))
    return torch.stack(columns, dim=-1)[:, 1:]


def _reason(limit: SafetyLimit, p: float) -> str:
    unit = _SERIES_UNITS.get(limit.series, "")
    threshold = f"{limit.below:g} {unit}".strip()
    return (
        f"predicted P({limit.series} < {threshold}) = {p:.2f} exceeds the {limit.max_probability:g} limit ({limit.name})"
    )


def safety_removals(
    proposals: Sequence[Proposal], probs: Tensor, limits: Sequence[SafetyLimit]
) -> tuple[list[int], list[SafetyRemoval]]:
    """Split candidates into survivors and removals. probs (n, L) from `p_unsafe`.

    Returns (indices of survivors, one SafetyRemoval per removed candidate). A candidate that breaks
    several limits is recorded under the one it exceeds by most, with every reason in the text.
    """
    keep, removed = [], []
    for i, proposal in enumerate(proposals):
        broken = [(float(probs[i, j]) - lim.max_probability, j) for j, lim in enumerate(limits)
                  if float(probs[i, j]) > lim.max_probability]
        if not broken:
            keep.append(i)
            continue
        reasons = "; ".join(_reason(limits[j], float(probs[i, j])) for _, j in broken)
        worst = max(broken)[1]
        removed.append(SafetyRemoval(proposal=proposal, p_unsafe=float(probs[i, worst]), limit=limits[worst].name,
                                     reason=reasons))
    return keep, removed


def outside_start(spec: CampaignSpec, proposals: Sequence[Proposal]) -> tuple[list[int], list[SafetyRemoval]]:
    """Before any model exists: split candidates into those inside the spec's start region and the rest.

    Outside it nothing can predict a candidate's safety, so it is removed with p_unsafe = 1.0,
    which here means "unknown, treated as unsafe" rather than a prediction.
    """
    keep, removed = [], []
    for i, proposal in enumerate(proposals):
        values = proposal.intervention.values
        outside = [v for v in spec.interventions if not (v.start_bounds[0] <= values[v.name] <= v.start_bounds[1])]
        if not outside:
            keep.append(i)
            continue
        where = "; ".join(f"{v.name} = {values[v.name]:.3g} {v.unit} is outside the start region "
                          f"[{v.start_bounds[0]:g}, {v.start_bounds[1]:g}]" for v in outside)
        removed.append(SafetyRemoval(proposal=proposal, p_unsafe=None, limit="start region", reason=(
            f"{where}; there is no world model yet to predict its safety, so it waits until one exists")))
    return keep, removed
