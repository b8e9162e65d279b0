"""Typed configuration of the lab adapters (env prefix `WETLOOP_LAB_`); explicit arguments beat it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wetloop.campaign import StrictSettings

__all__ = ["LabSettings", "default_cache_dir"]


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/wetloop/labs`, or `~/.cache/wetloop/labs` (each world's lab keeps its own subfolder)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wetloop" / "labs"


class LabSettings(StrictSettings):
    """`WETLOOP_LAB_CACHE_DIR`: where the in-process labs keep their runs, journals and run markers.
    `WETLOOP_LAB_WORKERS`: processes that simulate days in parallel (default: one per CPU).
    `WETLOOP_LAB_TOKEN`: the token a lab server asks for (`wetloop lab serve` prints it); the http adapter
    sends it as `Authorization: Bearer`, and `wetloop lab serve` uses it instead of making one up. Never
    put it in a spec: specs are stored with the campaign.
    `WETLOOP_LAB_EXECUTOR`: where a simulated world's experiments run, `process` (local worker processes,
    the default) or `ray` (one Ray task each, extra `ray`); a spec's `lab.options.executor` beats it.
    `WETLOOP_LAB_RAY_ADDRESS`: the Ray cluster to join (`auto`, `HOST:PORT`, `ray://HOST:PORT`); unset: start
    a local one. `WETLOOP_LAB_RAY_RETRIES`: how often Ray re-runs a simulated experiment whose worker or node died.
    """

    model_config = SettingsConfigDict(env_prefix="WETLOOP_LAB_", extra="forbid")

    cache_dir: Path = Field(default_factory=default_cache_dir)
    workers: int | None = Field(default=None, ge=1)
    token: SecretStr | None = None
    executor: Literal["process", "ray"] = "process"
    ray_address: str | None = Field(default=None, min_length=1)
    ray_retries: int = Field(default=3, ge=0, le=10)
