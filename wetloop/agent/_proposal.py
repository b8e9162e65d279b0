"""What every proposer is given and what it returns: the shared language's proposal types, here for the agent."""

from wetloop.campaign import CandidateDraft, HypothesisDraft, ProposalContext, Proposer, ProposerReply, safe_history

__all__ = ["ProposalContext", "CandidateDraft", "HypothesisDraft", "ProposerReply", "Proposer", "safe_history"]
