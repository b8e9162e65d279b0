"""Errors of the shared language and the campaign store.

    WetloopError                      base of every error the project raises on purpose
    ├── SpecError                     a campaign spec file is missing, not YAML, or invalid
    ├── InterventionError             an intervention breaks the spec's hard limits (.intervention)
    └── StoreError                    the campaign store cannot do what was asked
        ├── CampaignNotFound          no campaign with that id in the store
        └── AppendOnlyViolation       something tried to change or delete a stored record

Each message says what was wrong and what to try; the object at fault rides on the exception.
Other rooms derive their own errors from `WetloopError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "WetloopError",
    "SpecError",
    "InterventionError",
    "StoreError",
    "CampaignNotFound",
    "AppendOnlyViolation",
]


class WetloopError(Exception):
    """Base of the project's errors."""


class SpecError(WetloopError):
    """A campaign spec could not be read or is invalid."""


class InterventionError(WetloopError, ValueError):
    """An intervention is outside the spec's hard limits or names unknown variables."""

    def __init__(self, message: str, intervention: Any = None) -> None:
        super().__init__(message)
        self.intervention = intervention


class StoreError(WetloopError):
    """The campaign store refused an operation."""


class CampaignNotFound(StoreError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id!r} in this store; `wetloop status` lists the campaigns it holds")
        self.campaign_id = campaign_id


class AppendOnlyViolation(StoreError):
    """Stored records are never changed or deleted; append a new record instead."""
