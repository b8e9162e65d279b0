"""The review desk: the round awaiting review, the reviewer's draft decisions, and the release.

No web framework in here, so the rules are the same whoever calls them: a draft decision per
proposal (nothing is recorded until the round is released), edits validated by the graph's own
`edit_problem` (hard limits, then the world model's predicted safety) and re-predicted by the
round's planner and the campaign's current world model, and one release at a time, run in a
background thread because `Campaign.review` runs the loop on to the next review or the end.

A reason belongs to the action it was typed for: Reject and Save edit each have their own reason,
Approve takes none, and a submit that carries the makings of two actions (a reason typed for
another button, or edited values with Approve or Reject) is refused with what to do, as the CLI
refuses two flags on one proposal.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import TypeAdapter

from wetloop.campaign import (
    CampaignSpec,
    CampaignStore,
    Decision,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    Value,
    get_world,
)

from .. import _edits
from .._hints import command
from .._review import edit_problem
from ..errors import ReviewError

if TYPE_CHECKING:
    from ..runner import Campaign

__all__ = ["DraftDecision", "Draft", "DeskStatus", "Progress", "ReleaseConflict", "ReviewDesk", "parse_edit", "REASONED"]

Action = Literal["approve", "reject", "edit"]
REASONED: tuple[Action, ...] = ("reject", "edit")
"""The actions that take a reason, each from its own box."""
_BUTTON = {"approve": "Approve", "reject": "Reject", "edit": "Save edit"}


DRAFT_FILE = "review-draft.json"
"""The round's draft decisions in the run directory, until they are released."""


class ReleaseConflict(ReviewError):
    """A release that cannot happen now: the round was released already, or another release runs."""


@dataclass(frozen=True)
class DraftDecision:
    """One proposal's decision before release (the reviewer's name is added at release)."""

    action: Action
    reason: str = ""
    edited: Intervention | None = None
    predicted: RankedProposal | None = None
    """An edit's own prediction and score: the round's planner on the round's menu with the edit
    added, under the campaign's current world model (None without a model)."""
    model_version: str | None = None


@dataclass
class Draft:
    """What the reviewer decided so far on one round; for a refused submit, its message and what was
    typed (values, and the reason per action), so the page shows them again beside the message."""

    round: int
    decisions: dict[int, DraftDecision] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    typed: dict[int, dict[str, str]] = field(default_factory=dict)
    reasons: dict[int, dict[str, str]] = field(default_factory=dict)

    def copy(self) -> Draft:
        """A snapshot a page can read while another request changes the draft."""
        return Draft(
            self.round,
            dict(self.decisions),
            dict(self.errors),
            {i: dict(t) for i, t in self.typed.items()},
            {i: dict(r) for i, r in self.reasons.items()},
        )


_DRAFT = TypeAdapter(Draft)


@dataclass(frozen=True)
class DeskStatus:
    """`review` (a round awaits decisions), `running` (a released round runs), `finished`, or
    `stopped` (the loop raised; `message` says what happened and what to do)."""

    state: Literal["review", "running", "finished", "stopped"]
    round: int
    message: str = ""
    released: dict[int, str] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Progress:
    """How far the experiments have come: of the running round (results / approved) and of the
    campaign (results / the budget's rounds x batch), in the world's word for an experiment."""

    noun: str
    round_done: int
    round_total: int
    done: int
    total: int


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
        self._approved: dict[int, tuple[int, int]] = {}
        self._error = ""
        self._load_state()

    def _load_state(self) -> None:
        outcome = self.campaign.outcome()
        self._payload, self._done, self._round = outcome.review, outcome.done, outcome.round
        self._draft = self._saved_draft(outcome.review["round"]) if outcome.review else None

    # -- the draft on disk: a restarted server shows what the reviewer had decided ----------------
    @property
    def _draft_file(self) -> Path:
        return self.campaign.run_dir / DRAFT_FILE

    def _saved_draft(self, round: int) -> Draft:
        """The draft of `round` saved by an earlier server, or an empty one (a draft of another round,
        or one that cannot be read, is not this round's)."""
        try:
            saved = _DRAFT.validate_json(self._draft_file.read_bytes())
        except (OSError, ValueError):
            return Draft(round)
        return saved if saved.round == round else Draft(round)

    def _save_draft(self) -> None:
        """Write the draft at once (atomically), so a server killed now shows it again on restart."""
        if self._draft is None:
            self._draft_file.unlink(missing_ok=True)
            return
        tmp = self._draft_file.with_suffix(".tmp")
        tmp.write_bytes(_DRAFT.dump_json(self._draft))
        tmp.replace(self._draft_file)

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

    def progress(self) -> Progress:
        """Experiments with a result, of the round last released (or awaiting review) and of the campaign."""
        cid, rnd = self.campaign.campaign_id, self.status().round
        results = self.store.observations(cid)
        keys = {e.key for e in self.store.experiments(cid, round=rnd)}
        decided = self.store.decisions(cid, round=rnd)  # stored one by one before the experiments, refused edits as rejections
        with self._lock:
            released = self._approved.get(rnd)  # (decisions, approvals) of the release, until the loop stored them all
        if released is None or len(decided) >= released[0]:
            total = sum(d.action != "reject" for d in decided) if decided else len(keys)
        else:
            total = released[1]
        return Progress(
            get_world(self.spec.world).experiment_noun[1],
            len(keys & results.keys()),
            total,
            len(results),
            self.spec.budget.experiments,
        )

    def pending(self) -> tuple[dict[str, Any] | None, Draft | None]:
        """The review payload of the round awaiting review and its draft (None, None otherwise)."""
        with self._lock:
            if self._thread is not None:
                return None, None
            return self._payload, self._draft.copy() if self._draft is not None else None

    # -- deciding --------------------------------------------------------------------------------
    def decide(
        self,
        round: int,
        index: int,
        action: str,
        reasons: Mapping[str, str] | None = None,
        typed: Mapping[str, str] | None = None,
    ) -> str | None:
        """Record a draft decision on proposal `index` of `round`; returns the problem, or None.

        `action` is approve, reject (needs its reason, `reasons["reject"]`), edit (`typed` values,
        validated like the graph validates them, and re-predicted; `reasons["edit"]`) or undo. A
        refused submit leaves the proposal undecided, with the message and what was typed kept."""
        reasons, typed = dict(reasons or {}), dict(typed or {})
        with self._lock:
            draft, proposal = self._proposal(round, index)
            for kept in (draft.errors, draft.decisions, draft.typed, draft.reasons):
                kept.pop(index, None)
            try:
                if action != "undo":
                    self._one_action(proposal, action, reasons, typed)
                    draft.decisions[index] = self._decision(round, proposal, action, reasons.get(action, "").strip(), typed)
            except ReviewError as exc:
                draft.errors[index], draft.typed[index] = str(exc), typed
                draft.reasons[index] = {a: reasons[a] for a in REASONED if reasons.get(a, "").strip()}
                return str(exc)
            finally:
                self._save_draft()
            return None

    def _one_action(self, proposal: dict[str, Any], action: str, reasons: Mapping[str, str], typed: Mapping[str, str]) -> None:
        """Refuse a submit that holds a second action beside `action`: a reason typed for another
        button, or values edited while pressing Approve or Reject."""
        pressed = _BUTTON.get(action, action)
        for other in REASONED:
            if other != action and reasons.get(other, "").strip():
                raise ReviewError(
                    f"you pressed {pressed}, but the reason box of {_BUTTON[other]} holds {reasons[other].strip()!r}; "
                    f"a reason goes only with the action it was typed for: press {_BUTTON[other]}, or press Undo "
                    f"to clear the boxes and decide again. Nothing was decided."
                )
        if action != "edit" and (changed := self._changes(proposal, typed)):
            raise ReviewError(
                f"you pressed {pressed}, but the values are edited ({changed}); press Save edit to run the edited "
                f"values, or press Undo to restore the proposed ones and {pressed.lower()} the proposal as it is. "
                "Nothing was decided."
            )

    def _changes(self, proposal: dict[str, Any], typed: Mapping[str, str]) -> str:
        """The edited values in `typed`, in words ("" when they are the proposal's own)."""
        base, touched = proposal["values"], _touched(proposal["values"], typed)
        try:
            values = parse_edit(self.spec, base, touched).values
        except ReviewError:  # unreadable text is not the proposal's value either
            return ", ".join(f"{k} = {v.strip()!r}" for k, v in touched.items())
        return ", ".join(f"{k} = {_edits.edit_text(v)}" for k, v in values.items() if v != base.get(k))

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

    def _decision(self, round: int, proposal: dict[str, Any], action: str, reason: str, typed: dict[str, str]) -> DraftDecision:
        if action == "approve":
            return DraftDecision("approve")
        if action == "reject":
            if not reason:
                raise ReviewError("a rejection needs a reason: say why in the reason box of Reject, then press Reject again")
            return DraftDecision("reject", reason)
        if action == "edit":
            edited = parse_edit(self.spec, proposal["values"], _touched(proposal["values"], typed))
            world = self._world_model()
            problem = edit_problem(self.spec, edited, world)
            if problem:
                raise ReviewError(
                    f"{problem}. Nothing was submitted; change the values, or approve or reject the proposal as it is."
                )
            predicted = self._predict(round, proposal, edited, world) if world is not None else None
            version = getattr(world, "version", None) if predicted is not None else None
            return DraftDecision("edit", reason or "edited in review", edited, predicted, version)
        raise ReviewError(f"unknown action {action!r}; use approve, reject, edit or undo")

    def _world_model(self) -> Any:
        """The campaign's current world model, as the graph's `current_world`: the latest version
        (loaded once per version), else the world's prior model (None for most worlds)."""
        rec = self.store.latest(self.campaign.campaign_id, "model")
        version = rec.payload["version"] if rec is not None else "prior"
        if self._world is None or self._world[0] != version:
            world = get_world(self.spec.world)
            model = world.load_model(rec.payload["path"], self.spec) if rec is not None else world.prior_model(self.spec)
            self._world = (version, model)
        return self._world[1]

    def _predict(self, round: int, proposal: dict[str, Any], edited: Intervention, world: Any) -> RankedProposal | None:
        """The edit scored as the planner scored the proposal: the round's menu (ranked and removed
        candidates) with the edit added, ranked again by the world's planner under `world`; its band
        from the world model as the planner draws one. None when the planner removed it for safety."""
        recs = self.store.records(self.campaign.campaign_id, "ranking", round=round)
        ranking = Ranking.model_validate(recs[-1].payload) if recs else Ranking(round=round, ranked=())
        menu = [r.proposal for r in ranking.ranked] + [s.proposal for s in ranking.removed]
        original = next((r for r in ranking.ranked if r.proposal.intervention.key() == proposal["proposal_key"]), None)
        base = original.proposal if original is not None else Proposal(intervention=edited)
        planner = self.campaign._make_planner()  # the world's planner, with the campaign's planner settings
        again = planner.rank([*menu, base.model_copy(update={"intervention": edited})], world, self._history(), round)
        scored = next((r for r in again.ranked if r.proposal.intervention.key() == edited.key()), None)
        predict_band = getattr(world, "predict_band", None)
        if scored is None or scored.band is not None or not callable(predict_band):
            return scored
        level = original.band.level if original is not None and original.band is not None else None
        band = predict_band(edited, level=level) if level is not None else None  # an edit the planner did not pick
        return scored.model_copy(update={"band": band})

    def _history(self) -> list[tuple[Intervention, Observation]]:
        """Every experiment with its observation, in the order approved (what the planner ranks against)."""
        cid, obs = self.campaign.campaign_id, self.store.observations(self.campaign.campaign_id)
        return [(e.intervention, obs[e.key]) for e in self.store.experiments(cid) if e.key in obs]

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
            self._approved[round] = (len(decisions), sum(d.action != "reject" for d in decisions))
            self._payload, self._draft, self._round = None, None, round
            self._save_draft()  # released: the decisions go to the store, the draft is gone
            self._thread = threading.Thread(target=self._run, args=(decisions,), name=f"wetloop-release-{round}", daemon=True)
            self._thread.start()
            return decisions

    def _final(self, draft: Draft, by: str, approve_rest: bool) -> list[Decision]:
        assert self._payload is not None
        out = []
        for p in self._payload["selected"]:
            i, d = p["index"], draft.decisions.get(p["index"])
            if i in draft.errors:
                raise ReviewError(f"proposal #{i} has a refused decision ({draft.errors[i]}); decide #{i} again before releasing")
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


def _touched(base: Mapping[str, Value], typed: Mapping[str, str]) -> dict[str, str]:
    """The fields whose text is not what the page showed for the proposal (`edit_text`, rounded to 6
    digits): an untouched field keeps the proposal's exact value instead of its rounded text."""
    return {k: v for k, v in typed.items() if k not in base or v.strip() != _edits.edit_text(base[k])}


def _reviewer(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ReviewError("say who reviews: type your name in the 'reviewer' field")
    return name if name.startswith("person:") else f"person:{name[:80]}"
