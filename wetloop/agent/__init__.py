"""The loop: LangGraph graph, proposers (LLM and offline), review gate, CLI, reports. Nothing imports it."""

import importlib
from typing import Any

# Exported names and the module of each, imported on first use: `wetloop --help` and `lab serve`
# should not pay for torch, botorch, langgraph and openai.
_EXPORTS = {
    "CandidateDraft": "._proposal",
    "HypothesisDraft": "._proposal",
    "ProposalContext": "._proposal",
    "Proposer": "._proposal",
    "ProposerReply": "._proposal",
    "AgentSettings": ".configuration",
    "LLMSettings": ".configuration",
    "AgentError": ".errors",
    "ProposerError": ".errors",
    "ReviewError": ".errors",
    "RunDirError": ".errors",
    "LoopContext": ".graph",
    "build_graph": ".graph",
    "LLMProposer": ".llm",
    "OfflineProposer": ".offline",
    "Campaign": ".runner",
    "RunOutcome": ".runner",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


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
