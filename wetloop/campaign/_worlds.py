"""The world registry: which code serves each `spec.world`, found by name, imported on first use.

A world is one folder (`wetloop/worlds/<name>/`) with one class that bundles what is specific to a
kind of experiment: typed options, readout and series definitions, its lab, its world-model family,
its offline heuristics and its report. Rooms never import a world; they ask this registry, as
gymnasium's `make` does. Registration is a lazy `"module:Class"` string, so `wetloop --help` imports
no simulator; another package adds a world through the `wetloop.worlds` entry-point group:

    [project.entry-points."wetloop.worlds"]
    my_assay = "my_package.world:MyAssayWorld"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from .errors import SpecError

__all__ = ["WORLD_REGISTRY", "register_world_class", "get_world", "world_names"]

WORLD_REGISTRY: dict[str, str | Any] = {
    "simglucose": "wetloop.worlds.simglucose:SimglucoseWorld",
    "crispr_screen": "wetloop.worlds.crispr_screen:ScreenWorld",
    "custom": "wetloop.worlds.custom:CustomWorld",
    "sbml": "wetloop.worlds.sbml:SbmlWorld",
    "cell": "wetloop.worlds.cell:CellWorld",
}
"""Built-in worlds: name -> "module:Class" (or a class / instance registered at run time)."""

_loaded: dict[str, Any] = {}
_entry_points_read = False


def register_world_class(name: str, target: str | Any) -> None:
    """Register a world under `name`: a "module:Class" string, a class, or an instance."""
    WORLD_REGISTRY[name] = target
    _loaded.pop(name, None)


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    for ep in entry_points(group="wetloop.worlds"):
        WORLD_REGISTRY.setdefault(ep.name, ep.value)


def world_names() -> list[str]:
    """Every registered world, built-in and from entry points."""
    _read_entry_points()
    return sorted(WORLD_REGISTRY)


def get_world(name: str) -> Any:
    """The world object registered as `name` (one instance per process).

    Raises SpecError naming the known worlds when none is registered under that name, and the
    missing package (with its install line) when the world's optional dependencies are absent.
    """
    if name in _loaded:
        return _loaded[name]
    _read_entry_points()
    target = WORLD_REGISTRY.get(name)
    if target is None:
        raise SpecError(
            f"spec.world {name!r} is not a registered world; known worlds: {world_names()}. "
            "Fix spec.world, or register your world (entry point group 'wetloop.worlds')"
        )
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise SpecError(
                f"world {name!r} needs the package {exc.name!r}, which is not installed; "
                f'install the world\'s extra (e.g. pip install "wetloop[{name}]")'
            ) from None
    world = target() if isinstance(target, type) else target
    _loaded[name] = world
    return world
