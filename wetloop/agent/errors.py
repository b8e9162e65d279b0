"""Errors of the agent: the loop, the proposers, the review gate and the CLI.

    WetloopError (campaign.errors)
    └── AgentError                    the loop cannot go on as asked
        ├── ProposerError             a proposer could not produce candidates (.reply holds the raw reply)
        ├── ReviewError               a review decision is invalid (unknown proposal, bad edit)
        ├── RunDirError               a run directory is missing, not a campaign, or already used
        └── RunStopped                a campaign stopped on an error it can be resumed from (the cause chained)

Messages say what was wrong and what to try.
"""

from __future__ import annotations

from typing import Any

from wetloop.campaign import WetloopError

__all__ = ["AgentError", "ProposerError", "ReviewError", "RunDirError", "RunStopped"]


class AgentError(WetloopError):
    """Base of the agent's errors."""


class ProposerError(AgentError):
    def __init__(self, message: str, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply


class ReviewError(AgentError):
    def __init__(self, message: str, decision: Any = None) -> None:
        super().__init__(message)
        self.decision = decision


class RunDirError(AgentError):
    pass


class RunStopped(AgentError):
    pass
