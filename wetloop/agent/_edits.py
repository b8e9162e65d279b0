"""Review edits, read once for every reviewer's tool: the CLI's `--edit`, its prompt, and the web page.

An edit is text per variable; each kind has one written form, the one `edit_text` prints and
`parse_value` reads back:

- continuous, integer: a plain number, e.g. `0.5`, `22`, `1e-3` (ASCII digits; finite; an integer is whole);
- categorical: a name, e.g. `STAT1` (matched to the spec's choices regardless of case);
- set: `item:level` pairs joined by `+`, e.g. `Gata1:oe+Pu1:ko`; `none` for no items; with a single
  level the `:level` may be left out.

On one line (the CLI's `--edit` and its prompt) an edit is `name=value,name=value`, and may end with
its reason after `;`: `basal=0.5,carb_ratio=22; the last day ran low` (`parse_edit_line`).

Every error is a `ReviewError` that names the variable and shows the expected form. What may run is
judged afterwards by `edit_problems`, as for any candidate: the hard limits (bounds, allowed choices,
item counts), and before any world model exists (the first round) the start region too, to which the
planner confines that round's proposals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from wetloop.campaign import CampaignSpec, Intervention, Value, Variable

from .errors import ReviewError

__all__ = ["edit_problems", "edit_hint", "edit_text", "parse_edit", "parse_edit_line", "parse_edit_text", "parse_value"]

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A plain decimal number. Python's float() also takes `nan`, `inf`, `1_000` and non-ASCII digits: a
reviewer who typed those made a mistake, so they are refused here rather than run."""


def edit_hint(var: Variable) -> str:
    """The expected form of `var`'s edit, in words, e.g. `a number from 0.05 to 3 U/h`."""
    if var.kind == "continuous":
        return f"a number from {var.lower:g} to {var.upper:g}{' ' + var.unit if var.unit else ''}"
    if var.kind == "integer":
        return f"a whole number from {var.lower:g} to {var.upper:g}{' ' + var.unit if var.unit else ''}"
    if var.kind == "categorical":
        return f"one of {', '.join(var.choices)}" if var.choices else "a name"
    return (
        f"{var.min_items} to {var.most_items} of {', '.join(var.items or ())} as item:level joined by + "
        f"(levels {', '.join(var.levels)}), e.g. {_example_value(var)}, or none"
    )


def edit_text(value: Value) -> str:
    """A value in the form `parse_value` reads back (what an edit field shows before it is changed)."""
    if isinstance(value, dict):
        return "+".join(f"{item}:{level}" for item, level in sorted(value.items())) or "none"
    return value if isinstance(value, str) else f"{value:g}"


def parse_value(var: Variable, text: str) -> Value:
    """What a reviewer typed for `var`, as a value of its kind; ReviewError saying the expected form."""
    text = text.strip()
    if var.is_numeric:
        return _number(var, text)
    if var.kind == "categorical":
        return _name(var, text)
    return _set(var, text)


def parse_edit(spec: CampaignSpec, base: Mapping[str, Value], typed: Mapping[str, str]) -> Intervention:
    """`base` with the typed values replacing its own (a blank or absent field keeps the base value).

    `typed` maps variable names to text; a name that is not a variable of the spec is an error."""
    unknown = sorted(set(typed) - set(spec.variable_names))
    if unknown:
        raise ReviewError(f"no variable named {', '.join(unknown)}; the variables are {', '.join(spec.variable_names)}")
    values = dict(base)
    for var in spec.interventions:
        if typed.get(var.name, "").strip():
            values[var.name] = parse_value(var, typed[var.name])
    return Intervention(values=values)


def parse_edit_text(spec: CampaignSpec, base: Mapping[str, Value], text: str) -> Intervention:
    """An edit written on one line, `name=value,name=value` (e.g. `basal=0.5,carb_ratio=22`), applied to `base`."""
    typed: dict[str, str] = {}
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ReviewError(
                f"cannot read {pair.strip()!r} in edit {text!r}; write name=value pairs separated by commas, "
                f"e.g. {_example(spec)}, and a reason after ';' if you like"
            )
        if name in typed:
            raise ReviewError(f"edit {text!r} gives {name} twice; give each variable once")
        typed[name] = value
    return parse_edit(spec, base, typed)


def parse_edit_line(spec: CampaignSpec, base: Mapping[str, Value], text: str) -> tuple[Intervention, str]:
    """An edit on one line with its optional reason after the first `;`: (the edit, the reason or "").

    E.g. `basal=0.5,carb_ratio=22; the last day ran low`; the reason may hold commas and `=`."""
    values, _, reason = text.partition(";")
    return parse_edit_text(spec, base, values), " ".join(reason.split())


def edit_problems(spec: CampaignSpec, x: Intervention, *, before_model: bool) -> list[str]:
    """Why an edited intervention may not run, in words (empty when it may): outside the hard limits,
    or, `before_model` (no world model yet to predict its safety), outside a variable's start region."""
    problems = x.violations(spec)
    if problems:
        return [f"outside the hard limits: {'; '.join(problems)}"]
    if before_model:
        outside = [p for v in spec.interventions if (p := v.start_violation(x.values.get(v.name)))]
        if outside:
            return [
                f"{'; '.join(outside)}; before the world model has seen any result, an experiment stays inside "
                "the spec's start region (as the planner's first-round proposals do)"
            ]
    return []


# -- one kind each ---------------------------------------------------------------------------------
def _number(var: Variable, text: str) -> float:
    """A finite decimal number (whole for an integer variable)."""
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):  # `1e999` matches the pattern but overflows to inf
        raise ReviewError(f"cannot read {text!r} as a value of {var.name}; type {edit_hint(var)}, e.g. {_example_value(var)}")
    if var.kind == "integer" and not value.is_integer():
        raise ReviewError(f"{var.name} must be a whole number, got {text!r}; type {edit_hint(var)}")
    return value


def _name(var: Variable, text: str) -> str:
    """One name; matched to the spec's choices regardless of case, so `stat1` reads as `STAT1`."""
    if not text:
        raise ReviewError(f"cannot read {text!r} as a value of {var.name}; type {edit_hint(var)}")
    return _canonical(text, var.choices) if var.choices else text


def _set(var: Variable, text: str) -> dict[str, str]:
    """`item:level+item:level` (or `none`) as a mapping of item to level."""
    if text.lower() in ("none", "{}", "-"):
        return {}
    chosen: dict[str, str] = {}
    for part in text.split("+"):
        item, sep, level = (s.strip() for s in part.partition(":"))
        if not sep and len(var.levels) == 1:
            level = var.levels[0]  # one level: naming the item says it all
        if not item or not level:
            raise ReviewError(f"cannot read {part.strip()!r} in {var.name} = {text!r}; type {edit_hint(var)}")
        item = _canonical(item, var.items or ())
        if item in chosen:
            raise ReviewError(f"{var.name} = {text!r} names {item} twice; give each item once, with one level")
        chosen[item] = _canonical(level, var.levels)
    return chosen


def _canonical(name: str, known: tuple[str, ...] | None) -> str:
    """`name` spelled as in `known` when it matches one of them regardless of case; else as typed
    (the hard-limit check then says which names are allowed)."""
    matches = [k for k in known or () if k.lower() == name.lower()]
    return name if name in (known or ()) or len(matches) != 1 else matches[0]


def _example_value(var: Variable) -> str:
    if var.is_numeric:
        return edit_text(var.from_unit(0.5))
    if var.kind == "categorical":
        return var.choices[0] if var.choices else "STAT1"
    return "+".join(f"{item}:{var.levels[-1]}" for item in (var.items or ())[: max(1, min(2, var.most_items))])


def _example(spec: CampaignSpec) -> str:
    return ",".join(f"{v.name}={_example_value(v)}" for v in spec.interventions[:2])
