"""What every proposer is given and what it returns.

A proposer states hypotheses and, under each, raw candidate values. Nothing it returns is trusted:
the loop's `validate` node checks every candidate against the spec's hard limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field

from ._readouts import observed_safe
from ._records import Hypothesis, Intervention, Observation
from ._spec import CampaignSpec, Value

__all__ = [
    "ProposalContext",
    "CandidateDraft",
    "HypothesisDraft",
    "ProposerReply",
    "Proposer",
    "safe_history",
]


@dataclass(frozen=True)
class ProposalContext:
    """The campaign so far, as a proposer sees it."""

    spec: CampaignSpec
    round: int
    history: Sequence[tuple[Intervention, Observation]]
    hypotheses: Sequence[Hypothesis] = ()
    n_candidates: int = 48
    seed: int = field(default=0)

    def utility(self, obs: Observation) -> float | None:
        value = obs.readouts.get(self.spec.objective.readout)
        return None if value is None or obs.status != "ok" else self.spec.objective.utility(value)


class CandidateDraft(BaseModel):
    values: dict[str, Value]
    rationale: str = ""


class HypothesisDraft(BaseModel):
    statement: str
    candidates: list[CandidateDraft] = Field(default_factory=list)


class ProposerReply(BaseModel):
    """Hypotheses with their candidates; `problems` says what went wrong (e.g. a malformed LLM reply)."""

    source: str
    hypotheses: list[HypothesisDraft] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    raw: str | None = None  # the reply's text as received, when it could not be used (kept in the store)

    @property
    def n_candidates(self) -> int:
        return sum(len(h.candidates) for h in self.hypotheses)


class Proposer(Protocol):
    name: str

    def propose(self, ctx: ProposalContext) -> ProposerReply: ...


def safe_history(ctx: ProposalContext) -> list[tuple[Intervention, Observation, float]]:
    """Run experiments shown to stay within every safety limit, best utility first."""
    out = []
    for x, obs in ctx.history:
        u = ctx.utility(obs)
        if u is not None and observed_safe(ctx.spec, obs):
            out.append((x, obs, u))
    return sorted(out, key=lambda t: -t[2])
