"""The safety filter: candidates predicted to break a safety limit are removed before ranking.

A limit watches a series (any sample below `below` / above `above`) or a readout (its value). The
planner reads each limit's event from the world model's outcome readouts: the 0/1 event readout
`campaign.unsafe_readout_name(limit)` when the outcome gives it, else from the values the limit
watches (`limit_margin`). Units in reasons come from the declared `Series.unit` / `Readout.unit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from wetloop.campaign import CampaignSpec, Proposal, Readout, SafetyLimit, SafetyRemoval, Series, unsafe_readout_name

from .errors import WorldModelMismatch

__all__ = ["extreme_names", "limit_margin", "outside_start", "p_unsafe", "safety_removals", "unit_of"]

Readouts = Mapping[str, Tensor]


def extreme_names(
    limit: SafetyLimit, names: Sequence[str] | Mapping[str, object], declared: Sequence[Readout] = ()
) -> tuple[str | None, str | None]:
    """Readouts holding the lowest and the highest value a limit watches, among `names` (None: absent).

    A readout limit watches the readout itself. A series limit watches the series' min and max: a
    declared readout of that series with stat `min` / `max`, else the outcome's `min_<series>` /
    `max_<series>` (the convention world models follow for series extremes).
    """
    if limit.readout is not None:
        name = limit.readout if limit.readout in names else None
        return name, name
    found = []
    for stat in ("min", "max"):
        candidates = [r.name for r in declared if r.series == limit.series and r.stat == stat] + [f"{stat}_{limit.series}"]
        found.append(next((c for c in candidates if c in names), None))
    return found[0], found[1]


def limit_margin(limit: SafetyLimit, readouts: Readouts, declared: Sequence[Readout] = ()) -> Tensor | None:
    """Signed distance to the limit's threshold per sample, positive on the safe side (for a two-sided
    limit, the nearer side): readouts (...) -> (...), or None when a needed extreme is missing."""
    low, high = extreme_names(limit, readouts, declared)
    margins = []
    if limit.below is not None:
        if low is None:
            return None
        margins.append(readouts[low].double() - limit.below)
    if limit.above is not None:
        if high is None:
            return None
        margins.append(limit.above - readouts[high].double())
    return margins[0] if len(margins) == 1 else torch.minimum(margins[0], margins[1])


def _events(limit: SafetyLimit, readouts: Readouts, declared: Sequence[Readout], world: object) -> Tensor:
    """1.0 / 0.0 per sample: did the limit's event happen? readouts (S, n) -> (S, n) float64."""
    name = unsafe_readout_name(limit)
    if name in readouts:
        return (readouts[name].double() > 0.5).double()
    margin = limit_margin(limit, readouts, declared)
    if margin is not None:
        return (margin < 0).double()
    watched = f"readout {limit.readout!r}" if limit.readout else f"the min/max of series {limit.series!r}"
    raise WorldModelMismatch(
        f"the world model's outcome gives neither a {name!r} readout nor {watched}, so the planner cannot predict "
        f"the safety limit {limit.name!r} ({limit.describe()}); give the outcome model one of them or remove the "
        "limit from the spec",
        world=world,
    )


def p_unsafe(
    readouts: Readouts, limits: Sequence[SafetyLimit], n: int, world: object = None, declared: Sequence[Readout] = ()
) -> Tensor:
    """P(event) per candidate and limit: the fraction of samples in which the limit's event happened.

    Shapes: readouts[name] (S, n) -> (n, L), L = len(limits), columns in `limits` order.
    """
    columns = [torch.zeros(n, dtype=torch.float64)]  # a column of zeros keeps (n, 0) limits well shaped
    columns += [_events(limit, readouts, declared, world).mean(0) for limit in limits]
    return torch.stack(columns, dim=-1)[:, 1:]


def unit_of(limit: SafetyLimit, series: Sequence[Series] = (), readouts: Sequence[Readout] = ()) -> str:
    """The declared unit of what a limit watches ('' when undeclared: the planner assumes none)."""
    declared = series if limit.series is not None else readouts
    return next((d.unit for d in declared if d.name == limit.target), "")


def _reason(limit: SafetyLimit, p: float, unit: str) -> str:
    return f"predicted P({limit.describe(unit)}) = {p:.2f} exceeds the {limit.max_probability:g} limit ({limit.name})"


def safety_removals(
    proposals: Sequence[Proposal],
    probs: Tensor,
    limits: Sequence[SafetyLimit],
    units: Sequence[str] | None = None,
) -> tuple[list[int], list[SafetyRemoval]]:
    """Split candidates into survivors and removals. probs (n, L) from `p_unsafe`; units, one per limit.

    Returns (indices of survivors, one SafetyRemoval per removed candidate). A candidate that breaks
    several limits is recorded under the one it exceeds by most, with every reason in the text.
    """
    units = list(units) if units is not None else [""] * len(limits)
    keep, removed = [], []
    for i, proposal in enumerate(proposals):
        broken = [
            (float(probs[i, j]) - lim.max_probability, j)
            for j, lim in enumerate(limits)
            if float(probs[i, j]) > lim.max_probability
        ]
        if not broken:
            keep.append(i)
            continue
        reasons = "; ".join(_reason(limits[j], float(probs[i, j]), units[j]) for _, j in broken)
        worst = max(broken)[1]
        removed.append(
            SafetyRemoval(proposal=proposal, p_unsafe=float(probs[i, worst]), limit=limits[worst].name, reason=reasons)
        )
    return keep, removed


def outside_start(spec: CampaignSpec, proposals: Sequence[Proposal]) -> tuple[list[int], list[SafetyRemoval]]:
    """Before any model exists: split candidates into those inside the spec's start region and the rest.

    Only numeric (continuous, integer) variables have a start region (`start`, else their hard
    limits); categorical and set variables have none, so every value of theirs is inside. Outside
    it nothing can predict a candidate's safety, so it is removed with p_unsafe = None: "unknown,
    treated as unsafe" rather than a prediction.
    """
    keep, removed = [], []
    for i, proposal in enumerate(proposals):
        outside = _outside(spec, proposal.intervention.values)
        if not outside:
            keep.append(i)
            continue
        removed.append(
            SafetyRemoval(
                proposal=proposal,
                p_unsafe=None,
                limit="start region",
                reason=(f"{'; '.join(outside)}; there is no world model yet to predict its safety, so it waits until one exists"),
            )
        )
    return keep, removed


def _outside(spec: CampaignSpec, values: Mapping[str, object]) -> list[str]:
    """Each numeric variable of `values` outside its start region, in words."""
    return [p for v in spec.interventions if (p := v.start_violation(values.get(v.name)))]
