"""What the report says in words, shared by the HTML page, the Markdown summary and the terminal
tables: in the world's own units (`World.experiment_noun`: "days" where an experiment is a day, else
"experiments"), with safety wording only where the spec has safety limits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wetloop.campaign import CampaignSpec

from ._view import CampaignView, Outcome, world_of

__all__ = [
    "RoundColumn",
    "best_lines",
    "count_by",
    "lab_text",
    "noun_of",
    "num",
    "objective_text",
    "plural",
    "round_columns",
    "short",
    "spent_text",
]


def num(value: Any, digits: int = 3) -> str:
    """Numbers for tables: 3 significant figures, a dash for a missing model field."""
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def short(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def noun_of(spec: CampaignSpec) -> tuple[str, str]:
    """What the spec's world calls one experiment, singular and plural ("experiment(s)" by default)."""
    world = world_of(spec)
    return tuple(world.experiment_noun) if world is not None else ("experiment", "experiments")


def plural(n: int, spec: CampaignSpec) -> str:
    """`n` experiments in the world's word: "1 day", "640 experiments"."""
    one, many = noun_of(spec)
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class RoundColumn:
    """One column of the rounds tables: its key in `rows_of`, its header, and its short header in
    the terminal (None: not shown there)."""

    key: str
    header: str
    short: str | None


def round_columns(spec: CampaignSpec) -> list[RoundColumn]:
    """The rounds tables' columns for this spec: a running total where the world names one (e.g.
    hits), unsafe counts only where the spec has safety limits, experiments in the world's word."""
    world = world_of(spec)
    total = world.objective_total(spec) if world is not None else None
    many = noun_of(spec)[1]
    unit = spec.cost.unit
    columns = [
        RoundColumn("round", "round", "round"),
        RoundColumn("experiments", many, "run"),
        RoundColumn("observed", "observed", None),
    ]
    if total:
        columns.append(RoundColumn("total", f"{total} so far", total))
    columns += [
        RoundColumn("best_objective", "best safe so far" if spec.safety else "best so far", "best"),
        RoundColumn("best_intervention", "best intervention", "best intervention"),
    ]
    if spec.safety:
        columns.append(RoundColumn("unsafe_days", f"unsafe {many}", "unsafe"))
    return columns + [
        RoundColumn("predicted_mean", "mean predicted", "pred."),
        RoundColumn("observed_mean", "mean observed", "obs."),
        RoundColumn("spent", f"spent ({unit})", None),
        RoundColumn("spent_total", f"spent so far ({unit})", "spent"),
    ]


def objective_text(spec: CampaignSpec) -> str:
    """The objective in words: "maximize time_in_range", "target glucose_mean = 120"."""
    o = spec.objective
    if o.direction == "target":
        return f"target {o.readout} = {o.target_value:g} (the closer, the better)"
    return f"{o.direction} {o.readout}"


def lab_text(view: CampaignView) -> str:
    """Which lab ran the experiments: the adapter and where it is (a URL, a host and port), or the
    world run by wetloop itself; and the lab names the results came back with."""
    lab, spec = view.spec.lab, view.spec
    if lab.adapter == "local":
        text = f"local: the {spec.world} world run by wetloop itself (simulated or played back from data; no instrument)"
    else:
        opts = lab.options
        if "base_url" in opts:
            where = f" at {opts['base_url']}"
        elif "host" in opts or "port" in opts:
            where = f" at {opts.get('host', '(default host)')}:{opts.get('port', '(default port)')}"
        else:
            where = " at its default address"
        others = [f"{k}={v}" for k, v in sorted(opts.items()) if k not in ("base_url", "host", "port") and _scalar(v)]
        text = f"{lab.adapter} adapter{where}" + (f" ({', '.join(others)})" if others else "")
    names = sorted({o.observation.lab for o in view.outcomes if o.observation is not None and o.observation.lab})
    return text + (f"; results reported by {', '.join(names)}" if names else "")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def spent_text(view: CampaignView) -> str:
    """The campaign's spending in words, e.g. `12 patient-day on 12 experiments with a result`."""
    run = sum(o.observation is not None for o in view.outcomes)
    return f"{view.spent():g} {view.spec.cost.unit} on {run} experiment{'s' * (run != 1)} with a result"


def best_lines(view: CampaignView, bold: tuple[str, str] = ("**", "**")) -> list[str]:
    """The campaign's answer so far, in sentences: the running total where the world names one (e.g.
    hits found), else the best intervention; safety wording only where the spec has safety limits."""
    spec, (b0, b1) = view.spec, bold
    one, many = noun_of(spec)
    observed = [o for o in view.outcomes if o.objective is not None]
    if not observed:
        return ["No experiment has been observed yet."]
    unsafe = sum(o.unsafe for o in observed)
    tally = [f"Unsafe {many} in the campaign: {unsafe} of {len(observed)} observed."] if spec.safety else []
    if view.total_label:
        return [
            f"{b0}{view.total_label.capitalize()} found:{b1} {num(view.total())} in {plural(len(observed), spec)} observed.",
            *tally,
        ]
    if (best := view.best()) is None:
        return [f"No safe {one} yet. {' '.join(tally)}".strip()]
    line = (
        f"{b0}Best intervention:{b1} {best.experiment.intervention.describe(spec)} — observed "
        f"{spec.objective.readout} = {num(best.objective)} in round {best.experiment.round}"
    )
    if spec.safety:
        same = [o for o in observed if o.experiment.intervention.key() == best.experiment.intervention.key()]
        bad = sum(o.unsafe for o in same)
        line += f"; no {one} with it was unsafe" if not bad else f"; {bad} of its {len(same)} {many} were unsafe"
    return [line + ".", *([""] if tally else []), *tally]


def count_by(items: Iterable[str]) -> list[tuple[str, int]]:
    """Each distinct item with how often it occurs, the most frequent first."""
    return Counter(items).most_common()


def status_of(o: Outcome) -> str:
    return o.observation.status if o.observation is not None else "pending"
