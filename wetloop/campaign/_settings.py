"""`StrictSettings`: the base of every room's typed settings. A misspelt setting is an error.

pydantic-settings ignores environment variables that match no field, so `WETLOOP_PLANNER_IG_WIEGHT=5`
would silently do nothing; with `extra="forbid"` a misspelt keyword argument is refused, and the
check below refuses a misspelt variable under the class's own prefix. (A class whose prefix is the
project's shared `WETLOOP_` checks keyword arguments only: other rooms' variables share that prefix.)
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["StrictSettings", "SHARED_PREFIX"]

SHARED_PREFIX = "WETLOOP_"


class StrictSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_environment(cls, data: Any) -> Any:
        prefix = str(cls.model_config.get("env_prefix") or "").upper()
        if not prefix or prefix == SHARED_PREFIX:
            return data
        known = {name.upper() for name in cls.model_fields}
        unknown = sorted(k for k in os.environ if k.upper().startswith(prefix) and k.upper()[len(prefix) :] not in known)
        if unknown:
            names = ", ".join(prefix + k for k in sorted(known))
            raise ValueError(f"unknown setting(s) in the environment: {unknown}; unset or correct them (known: {names})")
        return data
