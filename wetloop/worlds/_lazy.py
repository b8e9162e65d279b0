"""Lazy exports of a world package (PEP 562): each name imports its module on first use.

The registry imports a world's package for its `World` class, and the CLI does so for every world to
let it add its commands; so a world package's `__init__` imports only its light `_world` module and
names the rest here, and the simulator, torch and botorch load when a campaign first needs them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `modules` maps a relative module ("._lab") to the names it
    exports; a name is imported from its module when first asked for, then kept on the package."""
    where = {name: module for module, names in modules.items() for name in names}

    def load(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
