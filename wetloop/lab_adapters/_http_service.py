"""What a lab server knows and does, apart from HTTP: one lab per registered campaign, its tickets,
and the checks that make a server safe to retry against.

    <state_dir>/campaigns/<campaign>/spec.json           the campaign's spec, as registered
    <state_dir>/campaigns/<campaign>/tickets/<key>.json  an accepted experiment's ticket (the lab's receipt)

Both are written atomically before the reply goes out, so a server restarted on the same state_dir
answers the experiments an earlier one accepted (its lab finds their runs in its own journal and
cache), and a client that retries a PUT after the server accepted it gets the same ticket back: the
world runs each key once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from wetloop.campaign import CampaignSpec, Experiment, Ticket, Variable, WetloopError

from ._disk import write_atomic
from ._http_protocol import (
    ID_PATTERN,
    CampaignOut,
    ExperimentOut,
    LabInfo,
    Problem,
    ProblemCode,
    RunsOut,
    TicketOut,
    local_spec,
)
from ._protocol import Lab
from .errors import ExperimentRejected, UnknownTicket

__all__ = ["LabService", "Refused"]

_ID = re.compile(ID_PATTERN)


def _safe(name: str) -> str:
    """A campaign id or key that is safe as a file name (the web layer checks too; this is the backstop)."""
    if not _ID.match(name):
        raise Refused(404, "unknown_experiment", f"{name!r} is not a valid id; ids match {ID_PATTERN}")
    return name


def _describe_limit(v: Variable) -> str:
    if v.lower is not None and v.upper is not None:
        return f"{v.name} {v.lower:g} to {v.upper:g}{' ' + v.unit if v.unit else ''}"
    if v.choices is not None:
        return f"{v.name} one of {', '.join(v.choices)}"
    if v.items is not None:
        return f"{v.name} at most {v.most_items} of {', '.join(v.items)}"
    return f"{v.name} (names the world decides)"


class Refused(Exception):
    """A request the server answers with a 4xx `Problem` (mapped to HTTP by `_http_server`)."""

    def __init__(self, status: int, error: ProblemCode, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.problem = status, Problem(error=error, message=message, reasons=reasons)


class LabService:
    """The labs behind one server. Thread-safe: the web framework calls it from a thread pool.

    Args:
        factory: builds the lab for a campaign's spec (its `lab` already reset to local), e.g.
            `lambda spec: make_lab(spec, cache_dir=..., workers=...)`.
        world: the only `spec.world` this server runs.
        state_dir: where specs and tickets persist (None: memory only; a restart forgets them).
        lab_spec: the lab's own spec, if it has one: campaigns must ask for its world_options, and
            every experiment must lie inside its hard limits as well as inside its campaign's.
    """

    def __init__(
        self,
        factory: Callable[[CampaignSpec], Lab],
        *,
        world: str,
        state_dir: Path | str | None = None,
        lab_spec: CampaignSpec | None = None,
        name: str = "wetloop-lab",
    ) -> None:
        self.factory, self.world, self.lab_spec, self.name = factory, world, lab_spec, name
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._labs: dict[str, Lab] = {}
        self._tickets: dict[tuple[str, str], Ticket] = {}
        self._cancelled: set[tuple[str, str]] = set()
        self._started: dict[str, dict[str, int]] = {}
        self._lock = threading.RLock()

    # -- the protocol's operations --------------------------------------------------------------
    def info(self) -> LabInfo:
        limits = (
            None
            if self.lab_spec is None
            else {v.name: (v.lower, v.upper) for v in self.lab_spec.interventions if v.lower is not None and v.upper is not None}
        )
        return LabInfo(lab=self.name, world=self.world, limits=limits)

    def register(self, campaign: str, spec: CampaignSpec) -> CampaignOut:
        """Register a campaign (idempotent: the same spec again is fine; another spec is a 409). With a
        lab spec, a campaign whose limits reach beyond the lab's is refused (422 `invalid_spec`)."""
        spec = local_spec(spec)
        self._check_world(spec)
        if reasons := self.beyond_lab_limits(spec):
            raise Refused(
                422,
                "invalid_spec",
                f"the campaign's limits reach beyond this lab's own: {'; '.join(reasons)}; keep the campaign inside them",
                tuple(reasons),
            )
        with self._lock:
            known = self._stored_spec(campaign)
            if known is not None and known != spec:
                raise Refused(
                    409,
                    "campaign_conflict",
                    f"campaign {campaign!r} is registered with a different spec; "
                    "register the changed spec under a new id (the client derives it from the spec's hash)",
                )
            if campaign not in self._labs:
                self._labs[campaign] = self._build(spec)
            if known is None:
                self._save(campaign, "spec.json", spec.model_dump_json())
            return CampaignOut(campaign=campaign, world=spec.world, created=known is None)

    def beyond_lab_limits(self, spec: CampaignSpec) -> list[str]:
        """Each way `spec`'s intervention space reaches beyond the lab spec's (none without a lab spec)."""
        if self.lab_spec is None:
            return []
        mine = {v.name: v for v in self.lab_spec.interventions}
        reasons = []
        for v in spec.interventions:
            own = mine.get(v.name)
            if own is None or own.kind != v.kind:
                reasons.append(f"{v.name} is not a {v.kind} variable of this lab (it has {', '.join(mine)})")
            elif own.lower is not None and own.upper is not None and v.lower is not None and v.upper is not None:
                if v.lower < own.lower or v.upper > own.upper:
                    reasons.append(f"{v.name} [{v.lower:g}, {v.upper:g}] is not inside [{own.lower:g}, {own.upper:g}]")
            elif own.choices is not None and (v.choices is None or not set(v.choices) <= set(own.choices)):
                reasons.append(f"{v.name} may name choices outside {', '.join(own.choices)}")
            elif v.kind == "set" and not (
                set(v.items or ()) <= set(own.items or ()) and set(v.levels) <= set(own.levels) and v.most_items <= own.most_items
            ):
                reasons.append(f"{v.name} reaches beyond this lab's items, levels or count")
        return reasons

    def enforced_limits(self) -> str:
        """The limits this server enforces, in words (for its banner)."""
        if self.lab_spec is None:
            return (
                "each campaign's own hard limits, as its client registers them (no --spec: a client may register any "
                "limits; give the lab's own spec with --spec to bound them)"
            )
        return "; ".join(_describe_limit(v) for v in self.lab_spec.interventions) + " (the lab's own spec, and each campaign's)"

    def submit(self, campaign: str, key: str, experiment: Experiment) -> TicketOut:
        """Accept an experiment once: a repeated PUT of a key returns its ticket and runs nothing."""
        if experiment.key != key:
            raise Refused(
                422,
                "key_mismatch",
                f"the path names experiment {key!r} but the body's key is {experiment.key!r}; "
                "PUT each experiment at /experiments/<its key>",
            )
        with self._lock:
            lab = self._lab(campaign)
            self._check_limits(lab.spec, experiment)
            if (campaign, key) in self._cancelled or self._ticket(campaign, key) is None:
                return self._start(campaign, lab, experiment)
            return TicketOut(campaign=campaign, experiment_key=key, state="accepted", created=False)

    def status(self, campaign: str, key: str) -> ExperimentOut:
        """`running`, or `done` with the lab's Observation; results stay here, however often they are read.
        A lab that lost an accepted run (one that keeps nothing on disk, after a restart) runs it again."""
        with self._lock:
            lab, ticket = self._lab(campaign), self._known(campaign, key)
            try:
                observation = lab.poll(ticket)
            except UnknownTicket as exc:
                experiment = self._stored_experiment(campaign, key)
                if experiment is None:
                    raise Refused(404, "unknown_experiment", str(exc)) from None
                self._start(campaign, lab, experiment)
                return ExperimentOut(experiment_key=key, state="running", observation=None)
            return ExperimentOut(experiment_key=key, state="running" if observation is None else "done", observation=observation)

    def cancel(self, campaign: str, key: str) -> TicketOut:
        """Stop waiting for an experiment (idempotent); a later PUT of its key runs it again."""
        with self._lock:
            lab, ticket = self._lab(campaign), self._known(campaign, key)
            if (campaign, key) not in self._cancelled:
                try:
                    lab.cancel(ticket)
                except UnknownTicket as exc:
                    raise Refused(404, "unknown_experiment", str(exc)) from None
                self._cancelled.add((campaign, key))
                if self.state_dir is not None:  # forgotten after a restart, as the lab forgets its journal entry
                    self._ticket_file(campaign, key).unlink(missing_ok=True)
            return TicketOut(campaign=campaign, experiment_key=key, state="cancelled")

    def runs(self, campaign: str) -> RunsOut:
        """How often this server started each key, and how often its lab ran it (where it counts)."""
        with self._lock:
            lab = self._lab(campaign)
            started = dict(self._started.get(campaign, {}))
            counted = lab.completed_runs() if hasattr(lab, "completed_runs") else getattr(lab, "runs", None)
            keys = self._keys(campaign)
            completed = None if counted is None else {k: n for k, n in dict(counted).items() if k in keys}
            return RunsOut(campaign=campaign, started=started, completed=completed)

    def close(self) -> None:
        """Close every lab (running simulations finish into their cache)."""
        with self._lock:
            for lab in self._labs.values():
                lab.close()
            self._labs.clear()

    # -- campaigns ------------------------------------------------------------------------------
    def _check_world(self, spec: CampaignSpec) -> None:
        if spec.world != self.world:
            raise Refused(
                422,
                "wrong_world",
                f"this lab runs world {self.world!r}, the campaign asks for {spec.world!r}; "
                f"point the campaign at a server started with `wetloop lab serve --world {spec.world}`",
            )
        if self.lab_spec is not None and spec.world_options != self.lab_spec.world_options:
            raise Refused(
                422,
                "wrong_world",
                f"this lab runs world_options {self.lab_spec.world_options}, the campaign asks "
                f"for {spec.world_options}; use the lab's world_options in the campaign spec",
            )

    def _build(self, spec: CampaignSpec) -> Lab:
        try:
            return self.factory(spec)
        except (WetloopError, ValueError) as exc:  # e.g. WorldOptionError: an unknown patient
            raise Refused(422, "invalid_spec", f"the lab cannot run this campaign: {exc}") from None

    def _lab(self, campaign: str) -> Lab:
        """The campaign's lab; after a restart, rebuilt from its stored spec."""
        lab = self._labs.get(campaign)
        if lab is None:
            spec = self._stored_spec(campaign)
            if spec is None:
                raise Refused(
                    404,
                    "unknown_campaign",
                    f"no campaign {campaign!r} on this lab; PUT /v1/campaigns/{campaign} with its spec first",
                )
            lab = self._labs[campaign] = self._build(spec)
        return lab

    def _stored_spec(self, campaign: str) -> CampaignSpec | None:
        lab = self._labs.get(campaign)
        if lab is not None:
            return lab.spec
        path = self._campaign_dir(campaign) / "spec.json" if self.state_dir else None
        return CampaignSpec.model_validate_json(path.read_text()) if path is not None and path.is_file() else None

    # -- experiments ----------------------------------------------------------------------------
    def _check_limits(self, spec: CampaignSpec, experiment: Experiment) -> None:
        """The server's own check, before its lab sees the experiment: an invalid one never runs."""
        reasons = experiment.intervention.violations(spec)
        if self.lab_spec is not None:
            reasons += [f"lab limit: {r}" for r in experiment.intervention.violations(self.lab_spec) if r not in reasons]
        if reasons:
            raise Refused(
                422, "rejected", f"experiment {experiment.key} rejected, nothing was run: {'; '.join(reasons)}", tuple(reasons)
            )

    def _start(self, campaign: str, lab: Lab, experiment: Experiment) -> TicketOut:
        key = experiment.key
        try:
            ticket = lab.submit(experiment)
        except ExperimentRejected as exc:
            raise Refused(422, "rejected", str(exc), exc.reasons) from None
        counts = self._started.setdefault(campaign, {})
        counts[key] = counts.get(key, 0) + 1
        self._tickets[(campaign, key)] = ticket
        self._cancelled.discard((campaign, key))
        self._save(campaign, f"experiments/{_safe(key)}.json", experiment.model_dump_json())
        self._save(campaign, f"tickets/{_safe(key)}.json", ticket.model_dump_json())
        return TicketOut(campaign=campaign, experiment_key=key, state="accepted", created=True)

    def _known(self, campaign: str, key: str) -> Ticket:
        ticket = self._ticket(campaign, key)
        if ticket is None:
            raise Refused(404, "unknown_experiment", f"campaign {campaign!r} has no experiment {key!r} on this lab; PUT it first")
        return ticket

    def _ticket(self, campaign: str, key: str) -> Ticket | None:
        ticket = self._tickets.get((campaign, key))
        if ticket is None and self.state_dir is not None and self._ticket_file(campaign, key).is_file():
            ticket = self._tickets[(campaign, key)] = Ticket.model_validate_json(self._ticket_file(campaign, key).read_text())
        return ticket

    def _stored_experiment(self, campaign: str, key: str) -> Experiment | None:
        path = None if self.state_dir is None else self._campaign_dir(campaign) / "experiments" / f"{_safe(key)}.json"
        return Experiment.model_validate_json(path.read_text()) if path is not None and path.is_file() else None

    def _keys(self, campaign: str) -> set[str]:
        keys = {k for c, k in self._tickets if c == campaign}
        if self.state_dir is not None:
            keys |= {p.stem for p in (self._campaign_dir(campaign) / "tickets").glob("*.json")}
        return keys

    # -- disk -----------------------------------------------------------------------------------
    def _campaign_dir(self, campaign: str) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "campaigns" / _safe(campaign)

    def _ticket_file(self, campaign: str, key: str) -> Path:
        return self._campaign_dir(campaign) / "tickets" / f"{_safe(key)}.json"

    def _save(self, campaign: str, name: str, text: str) -> None:
        """Persist a file of the campaign's state (a memory-only service keeps nothing)."""
        if self.state_dir is not None:
            write_atomic(self._campaign_dir(campaign) / name, text)

    def __repr__(self) -> str:
        return f"LabService(world={self.world!r}, campaigns={sorted(self._labs)}, state_dir={self.state_dir})"
