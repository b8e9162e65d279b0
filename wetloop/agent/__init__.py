"""The loop: LangGraph graph, proposers (LLM and offline), review gate, CLI, reports. Nothing imports it."""

from ._proposal import CandidateDraft, HypothesisDraft, ProposalContext, Proposer, ProposerReply
from .configuration import AgentSettings, LLMSettings
from .errors import AgentError, ProposerError, ReviewError, RunDirError
from .graph import LoopContext, build_graph
from .llm import LLMProposer
from .offline import OfflineProposer
from .runner import Campaign, RunOutcome

__all__ = [
    "AgentError",
    "AgentSettings",
    "Campaign",
    "CandidateDraft",
    "HypothesisDraft",
    "LLMProposer",
    "LLMSettings",
    "LoopContext",
    "OfflineProposer",
    "ProposalContext",
    "Proposer",
    "ProposerError",
    "ProposerReply",
    "ReviewError",
    "RunDirError",
    "RunOutcome",
    "build_graph",
]
