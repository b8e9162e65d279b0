"""Typed configuration of the planner (env prefix `WETLOOP_PLANNER_`); explicit arguments beat it."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from wetloop.campaign import StrictSettings

__all__ = ["PlannerConfig"]

_ENV_PREFIX = "WETLOOP_PLANNER_"


class PlannerConfig(StrictSettings):
    """How the planner weighs value against information, and what it asks the world model for.

    acquisition = (ei_weight * EI + ig_weight * IG) / cost, where EI is in the objective's utility
    units (for `time_in_range`, a fraction in [0, 1]), IG is in nats, and cost is each candidate's
    `spec.cost_of(values)` (for a batch: marginal value per unit of the candidate's cost).

    - `ei_weight` (1.0): EI is the quantity the campaign is after, so it sets the scale.
    - `ig_weight` (0.01): one nat of information is worth 0.01 units of EI (one percentage point of
      time in range). IG is measured on the readouts the campaign decides by (the objective's margin
      to the best result so far and one safety margin per limit, see `ReadoutFeatures`), each in units of its own noise floor, so a
      candidate the ensemble is unsure about scores a few nats (0.5 * log(1 + spread^2 / floor^2)
      per direction of disagreement): IG breaks near-ties and pulls early rounds towards what the
      model does not know, without outvoting a real expected gain. For an objective with a larger
      utility scale (e.g. mean glucose, EI of tens) raise it in proportion.
    - `ig_noise_fraction` (0.01): each readout's noise floor (the smallest observation noise
      standard deviation IG assumes) is this fraction of the readout's scale: 1.0 for a declared
      fraction (time in range/above/below, or a binary readout), else the 10-90 % quantile range of
      its predicted samples over the menu and its observed values, whichever is wider. The floor
      keeps IG finite where particles agree exactly, and states that differences much smaller than
      the readout's range cannot be resolved.
    - `ig_margin_width` (0.25): the distance to a decision threshold (a safety limit; for the
      objective, once a safe result exists, the best one so far) within which disagreement counts,
      as a fraction of the margin's scale; beyond it, the margin saturates (tanh), so members
      disagreeing about values far from any limit, or about how bad a clearly worse candidate is,
      add almost no IG.
    - `band_level` (0.9): central interval of the predicted series band for each selected candidate.
    - `start_region_first` (True): before any world model exists, candidates outside the spec's
      conservative `start` region (numeric variables only) are removed.

    A world's own planner (`World.make_planner`) has its own settings, under its own env prefix.

    Unknown settings are errors, as keyword arguments (`PlannerConfig(ig_wieght=5)`) and as
    environment variables (`WETLOOP_PLANNER_IG_WIEGHT=5`), which pydantic-settings alone would ignore.
    """

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, extra="forbid")

    ei_weight: float = Field(default=1.0, ge=0.0)
    ig_weight: float = Field(default=0.01, ge=0.0)
    ig_noise_fraction: float = Field(default=0.01, gt=0.0, le=1.0)
    ig_margin_width: float = Field(default=0.25, gt=0.0)
    band_level: float = Field(default=0.9, gt=0.0, lt=1.0)
    start_region_first: bool = True

    @model_validator(mode="after")
    def _some_weight(self) -> PlannerConfig:
        if self.ei_weight == 0.0 and self.ig_weight == 0.0:
            raise ValueError("ei_weight and ig_weight are both 0: the acquisition would rank nothing; set one above 0")
        return self
