"""The review desk: the round awaiting review, the reviewer's draft decisions, and the release.

No web framework in here, so the rules are the same whoever calls them: a draft decision per
proposal (nothing is recorded until the round is released), edits validated by the graph's own
`edit_problem` (hard limits, then the world model's predicted safety), and one release at a time,
run in a background thread because `Campaign.review` runs the loop on to the next review or the end.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from wetloop.campaign import CampaignSpec, CampaignStore, Decision, Intervention, Value, get_world

from .. import _edits
from .._hints import command
from .._review import edit_problem
from ..errors import ReviewError

if TYPE_CHECKING:
    from ..runner import Campaign

__all__ = ["DraftDecision", "Draft", "DeskStatus", "ReleaseConflict", "ReviewDesk", "parse_edit"]

Action = Literal["approve", "reject", "edit"]


class ReleaseConflict(ReviewError):
    """A release that cannot happen now: the round was released already, or another release runs."""


@dataclass(frozen=True)
class DraftDecision:
    """One proposal's decision before release (the reviewer's name is added at release)."""

    action: Action
    reason: str = ""
    edited: Intervention | None = None


@dataclass
class Draft:
    """What the reviewer decided so far on one round, and the edits that were refused."""

    round: int
    decisions: dict[int, DraftDecision] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    typed: dict[int, dict[str, str]] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)

    def copy(self) -> Draft:
        """A snapshot a page can read while another request changes the draft."""
        return Draft(
            self.round, dict(self.decisions), dict(self.errors), {i: dict(t) for i, t in self.typed.items()}, dict(self.reasons)
        )


@dataclass(frozen=True)
class DeskStatus:
    """`review` (a round awaits decisions), `running` (a released round runs), `finished`, or
    `stopped` (the loop raised; `message` says what happened and what to do)."""

    state: Literal["review", "running", "finished", "stopped"]
    round: int
    message: str = ""
    released: dict[int, str] = field(default_factory=dict)
    error: str = ""


def parse_edit(spec: CampaignSpec, base: dict[str, Value], typed: dict[str, str]) -> Intervention:
    """The edited intervention: typed values replace `base` values (a blank field keeps it).

    The CLI's `--edit` reads its values with the same parser (`agent._edits`), so both say the same
    thing about the same typo; a ReviewError names the variable and the form it expects."""
    return _edits.parse_edit(spec, base, typed)


class ReviewDesk:
    """The review state of one campaign, shared by every request of the web app (thread-safe)."""

    def __init__(self, campaign: Campaign, reviewer: str) -> None:
        self.campaign, self.spec, self.reviewer = campaign, campaign.spec, reviewer
        self.store = CampaignStore(campaign.store.path)  # a read connection of our own
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._world: tuple[str, Any] | None = None
        self._released: dict[int, str] = {}
        self._error = ""
        self._load_state()

    def _load_state(self) -> None:
        outcome = self.campaign.outcome()
        self._payload, self._done, self._round = outcome.review, outcome.done, outcome.round
        self._draft = Draft(outcome.review["round"]) if outcome.review else None

    # -- reading ---------------------------------------------------------------------------------
    def status(self) -> DeskStatus:
        with self._lock:
            released, error = dict(self._released), self._error
            if self._thread is not None:
                return DeskStatus("running", self._round, f"round {self._round} released; the campaign is running", released)
            if self._payload is not None:
                return DeskStatus(
                    "review", self._payload["round"], f"round {self._payload['round']} awaits review", released, error
                )
            if self._done:
                return DeskStatus("finished", self._round, "the campaign is finished", released, error)
            hint = f"; `{command(f'resume --dir {self.campaign.run_dir}')}` continues it from its last checkpoint"
            return DeskStatus("stopped", self._round, (error or "the campaign stopped") + hint, released, error)

    def pending(self) -> tuple[dict[str, Any] | None, Draft | None]:
        """The review payload of the round awaiting review and its draft (None, None otherwise)."""
        with self._lock:
            if self._thread is not None:
                return None, None
            return self._payload, self._draft.copy() if self._draft is not None else None

    # -- deciding --------------------------------------------------------------------------------
    def decide(self, round: int, index: int, action: str, reason: str = "", typed: dict[str, str] | None = None) -> str | None:
        """Record a draft decision on proposal `index` of `round`; returns the problem, or None.

        `action` is approve, reject (needs a reason), edit (validated like the graph validates it:
        a refused edit leaves the proposal undecided, with the message kept for the page) or undo."""
        with self._lock:
            draft, proposal = self._proposal(round, index)
            for kept in (draft.errors, draft.decisions, draft.typed, draft.reasons):
                kept.pop(index, None)
            try:
                decision = self._decision(proposal, action, reason.strip(), typed or {})
            except ReviewError as exc:  # keep what was typed, so the page shows it again beside the message
                draft.errors[index], draft.typed[index], draft.reasons[index] = str(exc), dict(typed or {}), reason
                return str(exc)
            if decision is not None:
                draft.decisions[index] = decision
            return None

    def _awaiting(self, round: int) -> Draft:
        if self._thread is not None or self._payload is None or self._draft is None:
            raise ReleaseConflict(f"round {round} is not awaiting review: {self.status().message}")
        if round != self._draft.round:
            raise ReleaseConflict(
                f"round {round} is not the round awaiting review (round {self._draft.round} is); reload the page"
            )
        return self._draft

    def _proposal(self, round: int, index: int) -> tuple[Draft, dict[str, Any]]:
        draft = self._awaiting(round)
        for p in self._payload["selected"] if self._payload else ():
            if p["index"] == index:
                return draft, p
        raise ReviewError(
            f"no proposal #{index} in round {round}; choose from 1 to {len(self._payload['selected'] if self._payload else ())}"
        )

    def _decision(self, proposal: dict[str, Any], action: str, reason: str, typed: dict[str, str]) -> DraftDecision | None:
        if action == "undo":
            return None
        if action == "approve":
            return DraftDecision("approve", reason)
        if action == "reject":
            if not reason:
                raise ReviewError("a rejection needs a reason: say why in the reason box, then press Reject again")
            return DraftDecision("reject", reason)
        if action == "edit":
            edited = parse_edit(self.spec, proposal["values"], typed)
            problem = edit_problem(self.spec, edited, self._world_model())
            if problem:
                raise ReviewError(
                    f"{problem}. Nothing was submitted; change the values, or approve or reject the proposal as it is."
                )
            return DraftDecision("edit", reason or "edited in review", edited)
        raise ReviewError(f"unknown action {action!r}; use approve, reject, edit or undo")

    def _world_model(self) -> Any:
        """The campaign's latest world model (as the graph's `current_world`), loaded once per version."""
        rec = self.store.latest(self.campaign.campaign_id, "model")
        if rec is None:
            return None
        if self._world is None or self._world[0] != rec.payload["version"]:
            self._world = (rec.payload["version"], get_world(self.spec.world).load_model(rec.payload["path"], self.spec))
        return self._world[1]

    # -- releasing -------------------------------------------------------------------------------
    def release(self, round: int, reviewer: str, approve_rest: bool = False) -> list[Decision]:
        """Turn the draft into decisions by `person:<reviewer>` and run the campaign on in a thread.

        Raises ReleaseConflict when `round` was released already or is not awaiting review, and
        ReviewError when a proposal has no decision (and `approve_rest` is off) or a refused edit."""
        with self._lock:
            if round in self._released:
                raise ReleaseConflict(f"round {round} was already released ({self._released[round]}); nothing was released again")
            by = _reviewer(reviewer)
            decisions = self._final(self._awaiting(round), by, approve_rest)
            self._released[round] = f"by {by} at {time.strftime('%H:%M:%S')}"
            self._payload, self._draft, self._round = None, None, round
            self._thread = threading.Thread(target=self._run, args=(decisions,), name=f"wetloop-release-{round}", daemon=True)
            self._thread.start()
            return decisions

    def _final(self, draft: Draft, by: str, approve_rest: bool) -> list[Decision]:
        assert self._payload is not None
        out = []
        for p in self._payload["selected"]:
            i, d = p["index"], draft.decisions.get(p["index"])
            if i in draft.errors:
                raise ReviewError(
                    f"proposal #{i} has a refused edit ({draft.errors[i]}); fix the edit or decide #{i} otherwise before releasing"
                )
            if d is None and not approve_rest:
                raise ReviewError(
                    f"proposal #{i} has no decision; decide each proposal, or tick 'approve the rest' to approve the undecided ones"
                )
            d = d or DraftDecision("approve", "approved with the rest")
            out.append(Decision(proposal_key=p["proposal_key"], action=d.action, by=by, reason=d.reason, edited=d.edited))
        return out

    def _run(self, decisions: list[Decision]) -> None:
        round, error = self._round, ""
        try:
            self.campaign.review(decisions)
        except Exception as exc:  # the page must say the loop stopped, whatever stopped it
            self.campaign.console.print(traceback.format_exc(), markup=False)
            error = f"the release of round {round} failed with {type(exc).__name__}: {exc}"
        with self._lock:
            self._thread, self._error = None, error
            self._load_state()
            if error and self._draft is not None and self._draft.round == round:
                del self._released[round]  # the round still awaits review: it may be released again

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running release to finish; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._thread is None

    def close(self) -> None:
        self.store.close()


def _reviewer(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ReviewError("say who reviews: type your name in the 'reviewer' field")
    return name if name.startswith("person:") else f"person:{name[:80]}"
