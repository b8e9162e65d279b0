"""`CellOptions`: the world's `world_options`, and the cell fates read off marker genes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .._base import WorldOptions

__all__ = ["FATES", "MARKERS", "CellOptions", "Fate", "Start"]

Fate = Literal["erythrocyte", "megakaryocyte", "monocyte", "neutrophil"]
Start = Literal["committed", "progenitor"]

MARKERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "erythrocyte": (("Gata1", "EKLF"), ("Fli1",)),
    "megakaryocyte": (("Gata1", "Fli1"), ("EKLF",)),
    "monocyte": (("Pu.1", "cJun", "EgrNab"), ("Gfi1",)),
    "neutrophil": (("Pu.1", "Cebpa", "Gfi1"), ("EgrNab",)),
}
"""Each fate's marker genes (Krumsiek et al. 2011, Fig. 1): those on (above the threshold), those off.
A cell matching no fate, or more than one, is `undecided`."""

FATES: tuple[str, ...] = (*MARKERS, "undecided")


class CellOptions(WorldOptions):
    """How an experiment runs (steps are scanpy's Euler steps of `invTimeStep` = 0.02 time units).

    - `target`: the fate the campaign steers towards; `success`: the share of cells in it that counts.
    - `start`: `committed` cells (wild-type cells grown `committed_steps` from the progenitor state,
      scanpy's default run length) or `progenitor` cells (Gata2, Pu.1, Cebpa at 0.8, as scanpy starts).
    - `cells`, `steps`, `record_every`: population size, experiment length, time-course resolution.
    - `window`: the steps [start, stop) during which the cocktail's clamps hold; afterwards the
      genes are free and the fate read at the end is where the network settles on its own.
    - `overexpression`: the level an overexpressed gene is held at (a knocked-out one is held at 0);
      `noise`: the dynamic noise per step (scanpy's `noiseDyn`); `threshold`: a marker counts as on above it.
    """

    target: Fate = "erythrocyte"
    success: float = Field(default=0.9, gt=0.0, le=1.0)
    start: Start = "committed"
    committed_steps: int = Field(default=800, ge=1, le=10_000)
    cells: int = Field(default=200, ge=10, le=5_000)
    steps: int = Field(default=500, ge=2, le=10_000)
    window: tuple[int, int] = (0, 250)
    record_every: int = Field(default=10, ge=1)
    overexpression: float = Field(default=1.0, gt=0.0, le=2.0)
    noise: float = Field(default=0.001, ge=0.0, le=0.1)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_window(self) -> CellOptions:
        lo, hi = self.window
        if not 0 <= lo < hi <= self.steps:
            raise ValueError(f"window {list(self.window)} must satisfy 0 <= start < stop <= steps ({self.steps})")
        if self.record_every >= self.steps:
            raise ValueError(f"record_every ({self.record_every}) must be below steps ({self.steps})")
        return self
