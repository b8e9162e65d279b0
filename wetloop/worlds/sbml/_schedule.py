"""From one intervention's values to the events of its run: what is set or added, to what, when.

Times here are minutes. A `Plan` lists the values set before time 0 and the events after it; the
simulator applies each event just after the sample taken at its time (a dose at 60 min shows from the
next sample on, as a pre-dose blood draw would), and `input_channels` averages the same plan over
the intervals between observation times for the time-course world model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._model import ModelInfo
from ._options import BolusInput, ConstantInput, InitialInput, Input, PulsesInput, SbmlOptions, term_value

__all__ = ["Event", "Plan", "held_species", "input_channels", "plan_of"]


@dataclass(frozen=True)
class Event:
    """At `t_min`, set (`op="set"`) or add to (`op="add"`) the symbol `target`."""

    t_min: float
    target: str
    op: str
    value: float


@dataclass(frozen=True)
class Plan:
    """The values set before time 0 (`initial`) and the events after it, sorted by time."""

    initial: dict[str, float]
    events: tuple[Event, ...]


def held_species(options: SbmlOptions, info: ModelInfo) -> tuple[str, ...]:
    """Species ids that `constant`/`pulses` inputs clamp (made boundary species before compiling)."""
    held = [info.resolve(i.target, "inputs").id for i in options.inputs if i.how in ("constant", "pulses")]
    return tuple(sorted(s for s in held if info.symbols[s].kind == "species"))


def plan_of(options: SbmlOptions, info: ModelInfo, values: dict[str, Any], model_initial: dict[str, float]) -> Plan:
    """The run plan of one intervention. `model_initial` gives each target's value in the model
    (the default baseline of held inputs)."""
    end = options.times_min[-1]
    initial: dict[str, float] = {}
    events: list[Event] = []
    for inp in options.inputs:
        target = info.resolve(inp.target, "inputs").id
        for t, op, v in _timeline(inp, values, end, model_initial[target]):
            if t <= 0.0 and op == "set":
                initial[target] = v
            else:
                events.append(Event(max(t, 0.0), target, op, v))
    return Plan(initial, tuple(sorted(events, key=lambda e: (e.t_min, e.op == "add"))))


def _timeline(inp: Input, values: dict[str, Any], end: float, model_value: float) -> list[tuple[float, str, float]]:
    """(time, op, value) of one input, within [0, end)."""
    if isinstance(inp, InitialInput):
        return [(0.0, "set", _num(inp.value, values))]
    if isinstance(inp, BolusInput):
        return [(t, "add", _num(inp.dose, values)) for t in _bolus_times(inp, values, end)]
    baseline = term_value(inp.baseline, values, model_value)
    windows = _windows(inp, values, end)
    out = [(0.0, "set", baseline)]
    for a, b in windows:
        out += [(a, "set", _num(inp.value if isinstance(inp, ConstantInput) else inp.level, values))]
        out += [(b, "set", baseline)] if b < end else []
    return out


def _num(term: Any, values: dict[str, Any]) -> float:
    value = term_value(term, values)
    assert value is not None  # required fields are never None (pydantic checked them)
    return value


def _bolus_times(inp: BolusInput, values: dict[str, Any], end: float) -> list[float]:
    start, count = _num(inp.start, values), round(_num(inp.count, values))
    period = term_value(inp.period, values, 0.0) or 0.0
    if count > 1 and period <= 0:
        raise ValueError(f"bolus on {inp.target!r}: {count} doses need a period > 0 minutes")
    return [start + i * period for i in range(max(count, 0)) if start + i * period < end]


def _windows(inp: ConstantInput | PulsesInput, values: dict[str, Any], end: float) -> list[tuple[float, float]]:
    """The merged [on, off) windows of a held input, clipped to [0, end]."""
    start = _num(inp.start, values)
    if isinstance(inp, ConstantInput):
        raw = [(start, term_value(inp.end, values, end) or end)]
    else:
        width, period = _num(inp.width, values), _num(inp.period, values)
        if period <= 0 or width <= 0:
            raise ValueError(f"pulses on {inp.target!r}: width and period must be > 0 minutes, got {width}, {period}")
        most = int(np.ceil((end - start) / period)) if inp.count is None else round(_num(inp.count, values))
        raw = [(start + i * period, start + i * period + width) for i in range(max(most, 0))]
    merged: list[tuple[float, float]] = []
    for a, b in sorted((max(a, 0.0), min(b, end)) for a, b in raw if b > a and a < end):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def input_channels(plan: Plan, targets: Sequence[str], times_min: Sequence[float]) -> np.ndarray:
    """What each target receives on each interval between observation times. Shape (K, C), K =
    len(times_min) - 1, C = len(targets): a held or initial value is its time average over the interval,
    a bolus the total dose given in it (added to the held value when a target has both)."""
    t = np.asarray(times_min, dtype=float)
    out = np.zeros((len(t) - 1, len(targets)))
    for c, target in enumerate(targets):
        out[:, c] = _held_average(plan, target, t) + _doses(plan, target, t)
    return out


def _held_average(plan: Plan, target: str, t: np.ndarray) -> np.ndarray:
    sets = [(0.0, plan.initial[target])] if target in plan.initial else [(0.0, 0.0)]
    sets += [(e.t_min, e.value) for e in plan.events if e.target == target and e.op == "set"]
    grid = np.unique(np.concatenate([t, [s for s, _ in sets]]))
    level = np.zeros(len(grid))
    for s, v in sets:
        level[grid >= s] = v  # later sets override earlier ones from their time on
    area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(grid))])
    at = np.interp(t, grid, area)
    return np.diff(at) / np.diff(t)


def _doses(plan: Plan, target: str, t: np.ndarray) -> np.ndarray:
    adds = [(e.t_min, e.value) for e in plan.events if e.target == target and e.op == "add"]
    out = np.zeros(len(t) - 1)
    for s, v in adds:
        k = int(np.searchsorted(t, s, side="right")) - 1
        if 0 <= k < len(out):
            out[k] += v
    return out
