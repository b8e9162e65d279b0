"""The short Markdown summary of a campaign: question, answer so far, spending, rounds, hypotheses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._view import CampaignView, rows_of
from ._words import best_lines, num, round_columns, spent_text

__all__ = ["render_markdown"]


def _md_cell(value: Any) -> str:
    return num(value).replace("|", "\\|").replace("\n", " ")


def _md_table(view: CampaignView) -> list[str]:
    rows, columns = rows_of(view), round_columns(view.spec)
    if not rows:
        return ["No rounds yet."]
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_md_cell(r[c.key]) for c in columns) + " |" for r in rows]


def render_markdown(view: CampaignView, html_path: Path) -> str:
    """The short summary: question, best intervention (or the world's running total), what was spent,
    per-round table, hypotheses, report path."""
    lines = [f"# Campaign {view.campaign_id}", "", f"**Question:** {view.spec.question}", "", *best_lines(view)]
    lines += ["", f"**Spent:** {spent_text(view)} (budget: {view.spec.budget.experiments} experiments)."]
    if view.early_stop is not None:
        lines += ["", f"**Stopped early:** {view.early_stop.describe()}."]
    lines += ["", "## Rounds", "", *_md_table(view)]
    hyps = [
        f"- **{h.status}** ({len(h.evidence_for)} for, {len(h.evidence_against)} against): {h.statement}" for h in view.hypotheses
    ]
    lines += ["", "## Hypotheses", "", *(hyps or ["None stated yet."])]
    return "\n".join([*lines, "", f"Full report: {html_path}", ""])
