"""The loop's graph state. Kept small and JSON-plain: the records themselves live in the store."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["LoopState"]


class LoopState(TypedDict, total=False):
    """Checkpointed after every node.

    round: the round being worked on (1-based); raw: this round's raw candidates from the proposer
    (validated in `validate`); candidates: the validated proposals (JSON); approved: the experiments
    approved for submission (JSON); done: the budget is spent, or the campaign
    stopped early (the store's `early_stop` record says why).
    """

    campaign_id: str
    round: int
    raw: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    approved: list[dict[str, Any]]
    done: bool
