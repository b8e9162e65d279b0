"""Typed settings of the agent, from arguments first, then `WETLOOP_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wetloop.campaign import StrictSettings

__all__ = ["LLMSettings", "AgentSettings"]

# Worlds whose experiments are single genes of a screen (ScreenWorldModel, ScreenPlanner, screen report)


class LLMSettings(StrictSettings):
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server ...).

    With no `base_url` and no `api_key`, no endpoint is configured and the offline proposer runs.
    """

    model_config = SettingsConfigDict(env_prefix="WETLOOP_LLM_", extra="forbid")

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    temperature: float = 0.2
    timeout_s: float = 120.0
    max_retries: int = Field(default=3, ge=0)
    # how much one reply may hold (the schema also bounds its lists), so a small model cannot run on
    max_tokens: int = Field(default=4000, ge=256)
    max_hypotheses: int = Field(default=4, ge=1)
    # what one reply may be, whatever the endpoint does with max_tokens: longer, and it is cut off unread
    # (None: 16 characters per token of max_tokens)
    max_reply_chars: int | None = Field(default=None, ge=1_000)

    @property
    def reply_chars(self) -> int:
        return self.max_reply_chars if self.max_reply_chars is not None else 16 * self.max_tokens

    @property
    def configured(self) -> bool:
        return bool(self.base_url or self.api_key)


class AgentSettings(StrictSettings):
    """How the loop runs: review mode, candidate menu size, lab workers."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_", extra="forbid")

    review: bool = False
    learn: bool = True  # False: the no-learning control (no refit; the proposer is not shown results)
    shuffle_feedback: bool = False  # True: the negative control (each round's results permuted among its experiments)
    candidates_per_round: int = Field(default=48, ge=4)
    lab_workers: int | None = None
    poll_interval_s: float = Field(default=0.2, gt=0)
    # exports of other campaigns (`wetloop export`) whose results the world model learns from too
    prior: tuple[str, ...] = ()
