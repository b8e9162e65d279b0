"""Typed configuration of the planner (env prefix `WETLOOP_PLANNER_`); explicit arguments beat it."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PlannerConfig"]


class PlannerConfig(BaseSettings):
    """How the planner weighs value against information, and what it asks the world model for.

    acquisition = (ei_weight * EI + ig_weight * IG) / cost, where EI is in the objective's units
    (for `time_in_range`, a fraction in [0, 1]) and IG is in nats.

    - `ei_weight` (1.0): EI is the quantity the campaign is after, so it sets the scale.
    - `ig_weight` (0.01): one nat of information about the model is worth one percentage point of
      expected improvement in time in range. A candidate the ensemble is unsure about scores a few
      nats (0.5 * log(1 + spread^2 / noise^2) per direction of disagreement), so IG can move a
      candidate by a few points of EI: it breaks near-ties and pulls early rounds towards what the
      model does not know, without outvoting a real expected gain. For an objective in mg/dL
      (e.g. mean_glucose, EI of tens) raise it roughly a hundredfold.
    - `aleatoric_floor` (5.0 mg/dL): the smallest observation noise standard deviation assumed per
      time point in the information gain; a CGM cannot resolve differences much below this, and it
      keeps IG finite where the model's particles agree exactly (e.g. at t = 0).
    - `band_level` (0.9): central interval of the predicted glucose band for each selected candidate.
    - `start_region_first` (True): before any world model exists, candidates outside the spec's
      conservative `start` region are removed (nothing could predict their safety).
    - Screens (`ScreenPlanner`): acquisition = P(hit) + `screen_ig_weight` (0.05) * IG in nats (IG of a
      Bernoulli readout is at most log 2, so it can lift an uncertain gene by a few points of P(hit));
      the batch is Thompson sampling over the ensemble's members (no weight to set);
      `screen_keep_top` (300): ranked genes kept in the record besides the batch.
    """

    model_config = SettingsConfigDict(env_prefix="WETLOOP_PLANNER_", extra="ignore")

    ei_weight: float = Field(default=1.0, ge=0.0)
    ig_weight: float = Field(default=0.01, ge=0.0)
    aleatoric_floor: float = Field(default=5.0, gt=0.0)
    band_level: float = Field(default=0.9, gt=0.0, lt=1.0)
    start_region_first: bool = True
    screen_ig_weight: float = Field(default=0.05, ge=0.0)
    screen_keep_top: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> PlannerConfig:
        if self.ei_weight == 0.0 and self.ig_weight == 0.0:
            raise ValueError("ei_weight and ig_weight are both 0: the acquisition would rank nothing; set one above 0")
        return self
