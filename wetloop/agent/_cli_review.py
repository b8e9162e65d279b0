"""The terminal review of `wetloop review`: the table of proposals, and decisions from flags or prompts.

Decisions read edits with the shared parser (`agent._edits`, as the web page does); an edit may carry
a reason after `;` (`1:basal=0.5,carb_ratio=22; the last day ran low`), like `--reject '2=why'`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Decision, Hypothesis, Intervention

from ._edits import edit_problems, parse_edit_line
from .errors import ReviewError

__all__ = ["EDIT_HELP", "STATEMENT_WIDTH", "print_review", "decisions_from_flags", "decisions_interactive"]

EDIT_HELP = (
    "Edit: 'N:name=value,name=value' (repeatable); a set as item:level+item:level or none; "
    "a reason may follow after ';', e.g. '1:dose=0.5; the last result ran low'."
)
STATEMENT_WIDTH = 100
"""A hypothesis statement is shortened to this many characters, at a word, in the review table."""
EDITED = "edited in review"
"""The reason of an edit given without one."""


def print_review(console: Console, payload: dict[str, Any], hypotheses: Mapping[str, Hypothesis]) -> None:
    """The proposals awaiting review, then the statement of the hypothesis that motivated each (below the
    table, so a long statement never squeezes the numbers)."""
    table = Table(title=f"round {payload['round']}: proposals awaiting review")
    for col in ("#", "intervention", "predicted", "sd", "P(unsafe)", "info gain"):
        table.add_column(col)
    for p in payload["selected"]:
        s = p["score"]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(
            str(p["index"]), p["describe"], fmt(s["expected_value"]), fmt(s["value_std"]), fmt(s["p_unsafe"]), fmt(s["info_gain"])
        )
    console.print(table)
    for p in payload["selected"]:
        if statement := _statement(p["hypothesis_id"], hypotheses):
            console.print(f"  #{p['index']} hypothesis: {statement}", markup=False, highlight=False)
    for r in payload["removed"][:10]:
        console.print(f"  removed for safety: {r['describe']}: {r['reason']}")


def _statement(hypothesis_id: str | None, hypotheses: Mapping[str, Hypothesis]) -> str:
    """The hypothesis's statement, shortened at a word; its id when the store holds no such hypothesis."""
    if not hypothesis_id:
        return ""
    h = hypotheses.get(hypothesis_id)
    return textwrap.shorten(h.statement, STATEMENT_WIDTH, placeholder=" …") if h is not None else hypothesis_id


def _edit(spec: CampaignSpec, text: str, base: dict[str, Any], first_round: bool) -> tuple[Intervention, str]:
    """The edited intervention and its reason; ReviewError for a typo, a value outside the hard limits,
    or in the first round a value outside the start region."""
    x, reason = parse_edit_line(spec, base, text)  # the web page reads its edits with the same parser
    problems = edit_problems(spec, x, before_model=first_round)
    if problems:
        raise ReviewError(
            "edit refused: " + "; ".join(problems) + ". Nothing was submitted; review again with values inside the limits.",
            decision=text,
        )
    return x, reason or EDITED


def decisions_from_flags(
    spec: CampaignSpec,
    payload: dict[str, Any],
    by: str,
    approve_all: bool,
    approve: Sequence[int],
    reject: Sequence[str],
    edit: Sequence[str],
) -> list[Decision]:
    """One decision per proposal from `--approve N`, `--reject 'N=why'`, `--edit 'N:values[; why]'` and
    `--approve-all`; two flags on one proposal, or a proposal left undecided, is a ReviewError."""
    by_index = {p["index"]: p for p in payload["selected"]}
    chosen: dict[int, Decision] = {}
    flag: dict[int, str] = {}

    def index(text: str, given: str) -> int:
        if not text.strip().isdigit() or int(text) not in by_index:
            raise ReviewError(f"no proposal #{text.strip()} in this round; choose from {sorted(by_index)}")
        i = int(text)
        if i in flag:  # two flags on one proposal: refuse rather than let the last one silently win
            raise ReviewError(f"proposal #{i} has two decisions ({flag[i]} and {given}); give each proposal one decision")
        flag[i] = given
        return i

    for number in approve:
        i = index(str(number), f"--approve {number}")
        chosen[i] = Decision(proposal_key=by_index[i]["proposal_key"], action="approve", by=by)
    for item in reject:
        n, _, reason = item.partition("=")
        i = index(n, f"--reject {item!r}")
        if not reason.strip():
            raise ReviewError(f"--reject {item!r} needs a reason: --reject '{i}=why'")
        chosen[i] = Decision(proposal_key=by_index[i]["proposal_key"], action="reject", by=by, reason=reason.strip())
    for item in edit:
        n, _, values = item.partition(":")
        i = index(n, f"--edit {item!r}")
        edited, reason = _edit(spec, values, by_index[i]["values"], payload.get("round") == 1)
        chosen[i] = Decision(proposal_key=by_index[i]["proposal_key"], action="edit", by=by, edited=edited, reason=reason)
    for i, p in by_index.items():
        if i not in chosen:
            if not approve_all:
                raise ReviewError(f"no decision for proposal #{i}; decide each or pass --approve-all for the rest")
            chosen[i] = Decision(proposal_key=p["proposal_key"], action="approve", by=by)
    return [chosen[i] for i in sorted(chosen)]


def decisions_interactive(console: Console, spec: CampaignSpec, payload: dict[str, Any], by: str) -> list[Decision]:
    """Ask for each proposal in turn: approve, reject (with a reason) or edit (values, then an optional reason)."""
    decisions = []
    for p in payload["selected"]:
        while True:
            choice = typer.prompt(f"#{p['index']} {p['describe']}: [a]pprove, [r]eject, [e]dit", default="a").strip().lower()
            try:
                if choice.startswith("a"):
                    decisions.append(Decision(proposal_key=p["proposal_key"], action="approve", by=by))
                elif choice.startswith("r"):
                    reason = typer.prompt("reason")
                    decisions.append(Decision(proposal_key=p["proposal_key"], action="reject", by=by, reason=reason))
                elif choice.startswith("e"):
                    typed = typer.prompt("new values (name=value,...; reason)")
                    edited, reason = _edit(spec, typed, p["values"], payload.get("round") == 1)
                    decisions.append(Decision(proposal_key=p["proposal_key"], action="edit", by=by, edited=edited, reason=reason))
                else:
                    continue
                break
            except (ReviewError, ValueError) as exc:
                console.print(f"[red]{exc}[/]")
    return decisions
