"""Which lab adapter runs which `spec.world`: a small registry, so later worlds plug in by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wetloop.campaign import CampaignSpec

from ._protocol import Lab
from ._simglucose import SimglucoseLab
from ._simulated import SimulatedLab
from .errors import WorldNotFound

__all__ = ["LabFactory", "WORLDS", "register_world", "make_lab"]

LabFactory = Callable[..., Lab]
"""Builds a lab: `factory(spec, **kwargs) -> Lab`."""

WORLDS: dict[str, LabFactory] = {
    "simglucose": SimglucoseLab,
    "simulated": SimulatedLab,  # needs `world=<callable>`: make_lab(spec, world=fn)
}


def register_world(world: str, factory: LabFactory) -> None:
    """Make `make_lab` build `factory(spec, **kwargs)` for specs with `spec.world == world`."""
    WORLDS[world] = factory


def make_lab(spec: CampaignSpec, **kwargs: Any) -> Lab:
    """The lab adapter for `spec.world`, built with `kwargs` (e.g. cache_dir, workers).

    Raises `WorldNotFound`, listing the known worlds, when none is registered under that name.
    """
    factory = WORLDS.get(spec.world)
    if factory is None:
        raise WorldNotFound(spec.world, WORLDS)
    return factory(spec, **kwargs)
