"""Errors of the shared language and the campaign store.

    WetloopError                      base of every error the project raises on purpose
    ├── SpecError                     a campaign spec file is missing, not YAML, or invalid
    ├── InterventionError             an intervention breaks the spec's hard limits (.intervention)
    ├── StoreError                    the campaign store cannot do what was asked
    │   ├── CampaignNotFound          no campaign with that id in the store
    │   └── AppendOnlyViolation       something tried to change or delete a stored record
    └── DataFileError                 a data file (registered or a user's screen) is missing or unreadable (.relpath)
        └── ChecksumMismatch          a download's sha256 differs from the registry's; nothing was kept

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
    "DataFileError",
    "ChecksumMismatch",
]


class WetloopError(Exception):
    """Base of the project's errors."""


class SpecError(WetloopError):
    """A campaign spec could not be read or is invalid; `problems` holds one line per problem found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems is not None else [message]


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


class DataFileError(WetloopError):
    """A data file is missing, cannot be downloaded, or cannot be read."""

    def __init__(self, message: str, relpath: Any = None) -> None:
        super().__init__(message)
        self.relpath = relpath


class ChecksumMismatch(DataFileError):
    """A downloaded file is not the registered one; it was not kept."""

    def __init__(self, relpath: str, expected: str, got: str, url: str | None) -> None:
        super().__init__(
            f"download of {relpath} from {url} has sha256 {got}..., expected {expected}...; the file was not kept. "
            "The source may have changed: put a verified copy in a directory and set WETLOOP_DATA_DIR to it",
            relpath=relpath,
        )
        self.expected, self.got = expected, got
