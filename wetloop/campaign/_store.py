"""The campaign store: every spec, proposal, ranking, decision, submission, observation and model
version, append-only, in one SQLite file.

One table of records, each a JSON document with its campaign, kind, round and key. Triggers make
the table append-only (an UPDATE or DELETE aborts), and a unique index on (campaign, kind, key)
for the kinds that must exist once (a submission, an observation) makes recording them idempotent:
recording the same experiment's observation twice keeps the first and reports that it was there.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ._records import CeilingReached, Decision, EarlyStop, Experiment, Hypothesis, Observation, Proposal, Ranking, Ticket
from ._spec import CampaignSpec
from .errors import CampaignNotFound, StoreError

__all__ = ["CampaignStore", "StoredRecord", "KINDS", "UNIQUE_KINDS"]

M = TypeVar("M", bound=BaseModel)

KINDS = (
    "campaign",  # the spec, keyed by campaign id
    "proposal",  # a validated candidate from a proposer
    "invalid_proposal",  # a candidate rejected by validation, with the reason
    "ranking",  # one round's ranking and safety removals
    "decision",  # a review decision (approve, reject, edit)
    "experiment",  # an approved experiment, keyed by its idempotency key
    "submission",  # the lab's ticket for an experiment, keyed by experiment key
    "observation",  # what the lab returned, keyed by experiment key
    "quarantine",  # a lab reply that failed validation, with its raw payload
    "model",  # a world-model version: path, hash, fit metrics
    "hypothesis",  # a hypothesis version (the latest version of an id is current)
    "event",  # anything else worth a line in the log
)
UNIQUE_KINDS = ("campaign", "experiment", "submission", "observation")

_SCHEMA_TEMPLATE = """
CREATE TABLE IF NOT EXISTS records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    round       INTEGER,
    key         TEXT,
    payload     TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (campaign_id, kind, round);
CREATE UNIQUE INDEX IF NOT EXISTS records_once ON records (campaign_id, kind, key)
    WHERE kind IN ({unique});
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'wetloop store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'wetloop store is append-only'); END;
"""
_SCHEMA = _SCHEMA_TEMPLATE.replace("{unique}", ", ".join(f"'{k}'" for k in UNIQUE_KINDS))


@dataclass(frozen=True)
class StoredRecord:
    id: int
    campaign_id: str
    kind: str
    round: int | None
    key: str | None
    payload: dict[str, Any]
    created_at: float


class CampaignStore:
    """Append-only store of one or more campaigns in a SQLite file.

    Safe to open from several processes (WAL journal); every append commits at once (or, inside
    `transaction()`, with the others of the transaction), so a process killed at any point loses
    nothing that was recorded before it died.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def append(
        self,
        campaign_id: str,
        kind: str,
        payload: BaseModel | dict[str, Any],
        *,
        round: int | None = None,
        key: str | None = None,
    ) -> bool:
        """Append one record; returns False (and stores nothing) when a unique kind's key exists."""
        if kind not in KINDS:
            raise StoreError(f"unknown record kind {kind!r}; expected one of {KINDS}")
        if kind in UNIQUE_KINDS and key is None:
            raise StoreError(f"a {kind!r} record needs a key (it must exist once per key)")
        body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        try:
            text = json.dumps(body, sort_keys=True, allow_nan=False)
        except ValueError as exc:  # NaN or infinity: SQLite's JSON functions could not read the record
            raise StoreError(
                f"refused to store a {kind} record holding a non-finite number ({exc}); it would not be valid JSON"
            ) from None
        try:
            with self._tx():
                self._db.execute(
                    "INSERT INTO records (campaign_id, kind, round, key, payload, created_at) VALUES (?,?,?,?,?,?)",
                    (campaign_id, kind, round, key, text, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            if kind in UNIQUE_KINDS and "UNIQUE" in str(exc):
                return False
            raise StoreError(f"could not store {kind} record: {exc}") from exc
        return True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group appends into one commit: a process killed inside stores all of them or none.

        Appends inside run in this transaction (a unique kind's key that exists still returns False);
        nested transactions join the outermost one."""
        with self._tx():
            yield

    @contextmanager
    def _tx(self) -> Iterator[None]:
        if self._db.in_transaction:  # inside `transaction()`: its commit is this one's
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def create_campaign(self, spec: CampaignSpec, campaign_id: str | None = None) -> str:
        """Store a new campaign's spec and return its id (`<spec name>-<8 hex>` unless given)."""
        cid = campaign_id or f"{spec.name}-{uuid.uuid4().hex[:8]}"
        if not self.append(cid, "campaign", spec, key=cid):
            raise StoreError(f"campaign {cid!r} already exists in {self.path}; resume it or choose another id")
        return cid

    # -- reading -------------------------------------------------------------------------------
    def records(self, campaign_id: str, kind: str, *, round: int | None = None, key: str | None = None) -> list[StoredRecord]:
        query = "SELECT id, campaign_id, kind, round, key, payload, created_at FROM records WHERE campaign_id=? AND kind=?"
        args: list[Any] = [campaign_id, kind]
        if round is not None:
            query, args = query + " AND round=?", [*args, round]
        if key is not None:
            query, args = query + " AND key=?", [*args, key]
        rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [StoredRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def _models(self, model: type[M], campaign_id: str, kind: str, **kw: Any) -> list[M]:
        return [model.model_validate(r.payload) for r in self.records(campaign_id, kind, **kw)]

    def campaign_ids(self) -> list[str]:
        rows = self._db.execute("SELECT campaign_id FROM records WHERE kind='campaign' ORDER BY id").fetchall()
        return [r[0] for r in rows]

    def spec(self, campaign_id: str) -> CampaignSpec:
        recs = self.records(campaign_id, "campaign")
        if not recs:
            raise CampaignNotFound(campaign_id)
        return CampaignSpec.model_validate(recs[0].payload)

    def proposals(self, campaign_id: str, round: int | None = None) -> list[Proposal]:
        return self._models(Proposal, campaign_id, "proposal", round=round)

    def rankings(self, campaign_id: str) -> list[Ranking]:
        return self._models(Ranking, campaign_id, "ranking")

    def decisions(self, campaign_id: str, round: int | None = None) -> list[Decision]:
        return self._models(Decision, campaign_id, "decision", round=round)

    def experiments(self, campaign_id: str, round: int | None = None) -> list[Experiment]:
        return self._models(Experiment, campaign_id, "experiment", round=round)

    def submissions(self, campaign_id: str) -> dict[str, Ticket]:
        return {r.key: Ticket.model_validate(r.payload) for r in self.records(campaign_id, "submission")}  # type: ignore[misc]

    def observations(self, campaign_id: str) -> dict[str, Observation]:
        return {r.key: Observation.model_validate(r.payload) for r in self.records(campaign_id, "observation")}  # type: ignore[misc]

    def hypotheses(self, campaign_id: str) -> dict[str, Hypothesis]:
        """The current (latest) version of each hypothesis, in the order they were first stated."""
        latest: dict[str, Hypothesis] = {}
        for h in self._models(Hypothesis, campaign_id, "hypothesis"):
            latest[h.id] = h
        return latest

    def ceiling(self, campaign_id: str) -> CeilingReached | None:
        """When the campaign's best result reached its objective's ceiling (None: it has not)."""
        recs = self.records(campaign_id, "event", key="ceiling")
        return CeilingReached.model_validate(recs[0].payload) if recs else None

    def early_stop(self, campaign_id: str) -> EarlyStop | None:
        """Why the campaign ended before its budget was spent (None: it did not)."""
        recs = self.records(campaign_id, "event", key="early_stop")
        return EarlyStop.model_validate(recs[0].payload) if recs else None

    def latest(self, campaign_id: str, kind: str) -> StoredRecord | None:
        recs = self.records(campaign_id, kind)
        return recs[-1] if recs else None

    def count(self, campaign_id: str, kind: str, *, round: int | None = None) -> int:
        query = "SELECT COUNT(*) FROM records WHERE campaign_id=? AND kind=?"
        args: list[str | int] = [campaign_id, kind]
        if round is not None:
            query, args = query + " AND round=?", [*args, round]
        return int(self._db.execute(query, args).fetchone()[0])
