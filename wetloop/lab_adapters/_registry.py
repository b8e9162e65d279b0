"""Which lab adapter runs which `spec.world`: a small registry, so later worlds plug in by name."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from wetloop.campaign import CampaignSpec, SpecError, get_world, problem_lines, world_names

from ._protocol import Lab
from ._simulated import SimulatedLab
from .errors import LabError, WorldNotFound

__all__ = ["LabFactory", "WORLDS", "ADAPTERS", "register_world", "make_lab", "known_worlds", "lab_problems"]

LabFactory = Callable[..., Lab]
"""Builds a lab: `factory(spec, **kwargs) -> Lab`."""

WORLDS: dict[str, LabFactory] = {
    "simulated": SimulatedLab,  # needs `world=<callable>`: make_lab(spec, world=fn)
}
"""Labs registered at run time by name (tests, notebooks); every other world brings its own lab
(`World.make_lab`, found through `campaign.get_world`)."""


# Adapters that reach a lab through a protocol (`spec.lab.adapter`), imported only when used, because
# each needs an optional extra: "module:Class" and the extra that provides its dependencies.
ADAPTERS: dict[str, tuple[str, str]] = {
    "http": ("wetloop.lab_adapters.http:HttpLab", ""),  # the client needs only core deps (httpx, tenacity)
    "sila": ("wetloop.lab_adapters.sila:SilaLab", "sila"),
    "pylabrobot": ("wetloop.lab_adapters.plr:PlateLab", "pylabrobot"),
}


def _adapter(name: str) -> LabFactory:
    if name not in ADAPTERS:
        raise LabError(f"no lab adapter named {name!r}; spec.lab.adapter must be 'local' or one of {sorted(ADAPTERS)}")
    target, extra = ADAPTERS[name]
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        install = f'pip install "wetloop[{extra}]"' if extra else "pip install --force-reinstall wetloop"
        need = f"the optional extra {extra!r}" if extra else "wetloop's own dependencies"
        raise LabError(f"the {name!r} lab adapter needs {need} ({exc.name} is missing): {install}") from None


def _accepted(factory: LabFactory, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The runner's arguments (e.g. cache_dir, workers) that this adapter takes; a remote lab has its own."""
    params = inspect.signature(factory).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _check_options(name: str, factory: LabFactory, options: dict[str, Any]) -> None:
    """A misspelt option is an error naming the adapter's options, not something silently dropped.
    (An adapter with `**options` of its own, like pylabrobot, checks them itself.)"""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"spec"}
    unknown = sorted(set(options) - named)
    if unknown:
        raise LabError(f"spec.lab.options {unknown} are not options of the {name!r} lab adapter; it takes {sorted(named)}")


_RUNTIME = {"spec", "client", "cache_dir", "workers", "world", "executor"}
"""Arguments the runner or a test passes in code, never a spec's `lab.options`."""
_SECRETS = {"token": "WETLOOP_LAB_TOKEN"}
"""Arguments that must never sit in a spec (it is stored with the campaign), and where they come from instead."""


def lab_problems(spec: CampaignSpec, local_options: type[BaseModel] | None = None) -> list[str]:
    """Every problem of `spec.lab`, one line each starting with the field at fault (empty when the
    adapter exists here and takes these options with these types). Imports the adapter, not its lab.

    `local_options`: what the world's own (local) lab takes as `lab.options` (`World.lab_options`, e.g.
    `ExecutorOptions` for a simulated world); None: it takes none."""
    if spec.lab.adapter == "local":
        if local_options is None:
            return (
                [f"lab.options: the local lab takes no options, got {sorted(spec.lab.options)}; remove them"]
                if spec.lab.options
                else []
            )
        try:
            local_options.model_validate(spec.lab.options)
        except ValidationError as exc:
            return problem_lines(exc, spec.lab.options, local_options, "lab.options.")
        return []
    try:
        factory = _adapter(spec.lab.adapter)
    except LabError as exc:
        return [f"lab.adapter: {exc}"]
    secrets = [
        f"lab.options.{name}: a spec is stored with its campaign, so it never holds a secret; set {env} instead"
        for name, env in _SECRETS.items()
        if name in spec.lab.options
    ]
    if secrets:
        return secrets
    params = inspect.signature(factory).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        # an adapter with `**options` of its own declares them as a pydantic model (`options_model`)
        declared = getattr(factory, "options_model", None)
        if declared is None:
            return []
        rest = {k: v for k, v in spec.lab.options.items() if k not in params}
        try:
            declared.model_validate(rest)
        except ValidationError as exc:
            return problem_lines(exc, rest, declared, "lab.options.")
        return []
    hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)  # type: ignore[misc]
    fields: dict[str, Any] = {
        name: (hints.get(name, Any), ... if p.default is p.empty else p.default)
        for name, p in params.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in _RUNTIME and name not in _SECRETS
    }
    config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)
    model = create_model(f"{spec.lab.adapter}_options", __config__=config, **fields)
    try:
        model.model_validate(spec.lab.options)
    except ValidationError as exc:
        return problem_lines(exc, spec.lab.options, model, "lab.options.")
    return []


def register_world(world: str, factory: LabFactory) -> None:
    """Make `make_lab` build `factory(spec, **kwargs)` for specs with `spec.world == world`."""
    WORLDS[world] = factory


def make_lab(spec: CampaignSpec, **kwargs: Any) -> Lab:
    """The lab adapter for the spec: `spec.lab.adapter` when it is not "local" (built with
    `spec.lab.options` and `kwargs`), else the in-process world for `spec.world` (with `kwargs`, e.g.
    cache_dir, workers).

    Raises `WorldNotFound`, listing the known worlds, when none is registered under that name.
    """
    if spec.lab.adapter != "local":
        factory = _adapter(spec.lab.adapter)
        _check_options(spec.lab.adapter, factory, spec.lab.options)
        return factory(spec, **{**spec.lab.options, **_accepted(factory, kwargs)})
    local = WORLDS.get(spec.world)
    if local is not None:
        return local(spec, **kwargs)
    try:
        world = get_world(spec.world)
    except SpecError:
        raise WorldNotFound(spec.world, [*WORLDS, *world_names()]) from None
    return world.make_lab(spec, **kwargs)


def known_worlds() -> list[str]:
    """Every world a local lab can run: registered worlds and run-time labs."""
    return sorted({*WORLDS, *world_names()})
