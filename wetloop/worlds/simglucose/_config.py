"""Settings of the simglucose world's glucose model, `TrajectoryWorldModel` (environment prefix `WETLOOP_WORLDMODEL_`).

Explicit arguments beat the environment: `WorldModelConfig(members=7)` wins over
`WETLOOP_WORLDMODEL_MEMBERS=9`, which wins over the default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from wetloop.campaign import StrictSettings

__all__ = ["WorldModelConfig"]


class WorldModelConfig(StrictSettings):
    """Architecture, training and rollout settings of `TrajectoryWorldModel`."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_WORLDMODEL_", frozen=True, extra="forbid")

    # architecture
    members: int = Field(5, ge=2, description="ensemble members (each its own bootstrap and init)")
    hidden: int = Field(128, ge=4, description="units per hidden layer")
    layers: int = Field(3, ge=1, description="hidden layers per member")
    # time grid and features
    dt_min: float = Field(15.0, gt=0, description="model step in minutes; lab samples are regridded to it")
    glucose_lags: int = Field(4, ge=0, description="past glucose differences fed as features")
    log_glucose: bool = Field(True, description="model log(glucose): relative changes, never below zero")
    insulin_edges_min: tuple[float, ...] = Field(
        (0, 15, 30, 60, 90, 120, 180, 240, 300, 360, 480),
        description="edges of the lag windows (minutes before the step) over which insulin is summed",
    )
    carb_edges_min: tuple[float, ...] = Field(
        (0, 15, 30, 45, 60, 90, 120, 150, 180, 240, 300),
        description="edges of the lag windows (minutes before the step) over which carbohydrate is summed",
    )
    prehistory_basal: float | None = Field(
        None,
        description="U/h assumed delivered before t=0 (same for every day); None: the spec's "
        "world_options.prehistory_basal, else the geometric middle of the basal variable's start range",
    )
    warmup_feature: bool = Field(
        True, description="feed the share of the insulin windows that is assumed pre-history (a capped clock)"
    )
    glucose_clamp: tuple[float, float] = Field((10.0, 600.0), description="physical range of rollouts, mg/dL")
    # training
    bootstrap: Literal["day", "row"] = Field(
        "day", description="resample whole days per member (disagreement about unseen regimens) or single rows (PETS)"
    )
    epochs: int = Field(50, ge=1, description="passes over each member's bootstrap resample")
    min_steps: int = Field(800, ge=0, description="at least this many gradient steps, for small data")
    batch_size: int = Field(128, ge=8)
    lr: float = Field(4e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    logvar_bound_weight: float = Field(0.01, ge=0, description="pull on PETS' soft log-variance bounds")
    # rollouts
    particles: int = Field(10, ge=1, description="particles per member; samples S = members * particles")
    rollout_noise: float | None = Field(
        None,
        ge=0,
        description="scale of the per-step draws from each member's predicted noise in rollouts (PETS: 1). None: 1 "
        "when the spec fixes one day; 0 when its days vary, where the spread between particles comes from the days "
        "they live and from the members. Measured on a campaign's first 4 varying days (adolescent#003): with the "
        "draws, 4-12% of rollouts ran away to the 10 mg/dL floor during the night (compounding one-step noise), and "
        "every candidate was removed for safety; without them none did",
    )
    rollout_chunk: int = Field(128, ge=1, description="candidates rolled out per chunk (bounds memory)")
    seed: int = 0
    threads: int | None = Field(
        1,
        ge=1,
        description="torch intra-op threads while fitting and rolling out (None: leave torch's setting). "
        "Measured: on an idle 2-core machine 2 threads are ~1.3x faster; on cores shared with simulator or test "
        "processes they are 10-100x slower, so one is the safe default",
    )

    @model_validator(mode="after")
    def _check(self) -> WorldModelConfig:
        for name in ("insulin_edges_min", "carb_edges_min"):
            edges = getattr(self, name)
            if len(edges) < 2 or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
                raise ValueError(f"{name} must start at 0 and increase strictly, got {edges}")
        low, high = self.glucose_clamp
        if not 0 < low < high:
            raise ValueError(f"glucose_clamp must be 0 < low < high, got {self.glucose_clamp}")
        return self
