"""The custom world: a scientist's own experiment from a spec alone (see `_world.py`)."""

from ._world import CustomOptions, CustomWorld

__all__ = ["CustomOptions", "CustomWorld"]
