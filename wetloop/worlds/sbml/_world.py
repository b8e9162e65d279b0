"""`SbmlWorld`: any SBML (or COPASI) model as a lab, run by libroadrunner; interventions are input schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from wetloop.campaign import CampaignSpec, Intervention, Series, SpecError
from wetloop.worlds import World

from ._model import ModelInfo, model_info
from ._options import SbmlOptions
from ._schedule import input_channels, plan_of
from ._simulate import _model_units_per_minute, model_initial

__all__ = ["SbmlWorld"]


class SbmlWorld(World):
    """Species of an SBML model observed over time, under dose and input schedules (`SbmlOptions`)."""

    name: ClassVar[str] = "sbml"
    summary: ClassVar[str] = "any SBML model run by libroadrunner: dose and input schedules"
    Options: ClassVar[type[SbmlOptions]] = SbmlOptions

    # -- the spec -------------------------------------------------------------------------------
    def model(self, spec: CampaignSpec) -> tuple[SbmlOptions, ModelInfo]:
        """The validated options and the model they name (SpecError when either is wrong)."""
        options = self.options(spec)
        return options, model_info(options.model)

    def series(self, spec: CampaignSpec) -> tuple[Series, ...]:
        """One series per observed id, unit read from the model, never below 0 for a species; a
        series the spec declares under the same name keeps the spec's declaration. Sorted by name: the
        store keeps a spec's mappings with sorted keys, so the YAML's order would not survive a resume
        (a saved series model refused to load after one)."""
        try:
            options, info = self.model(spec)
            symbols = {name: info.resolve(sid, "observe") for sid, name in options.observe.items()}
        except SpecError:
            return tuple(spec.series)  # check_spec reports why
        return tuple(
            spec.series_named(name)
            or Series(
                name=name,
                unit=s.unit,
                lower=0.0 if s.kind == "species" else None,
                description=f"{s.kind} {s.id} ({s.name}) of {info.ref}",
            )
            for name, s in sorted(symbols.items())
        )

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        problems = super().check_spec(spec)
        try:
            options, info = self.model(spec)
        except SpecError as exc:
            return problems if str(exc) in problems else [*problems, str(exc)]
        return problems + _model_problems(spec, options, info)

    # -- the lab --------------------------------------------------------------------------------
    def example_spec(self) -> CampaignSpec | None:
        """The NF-kB pulse campaign, 2 rounds of 2."""
        from wetloop.campaign import Budget, load_spec

        from . import SPECS_DIR

        return load_spec(SPECS_DIR / "nfkb_pulses.yaml").with_overrides(budget=Budget(rounds=2, batch=2))

    def dense_optimum(self, spec: CampaignSpec, n: int = 1024) -> Any:
        """The best safe answer by brute-force simulation (see `_optimum.dense_optimum`)."""
        from ._optimum import dense_optimum

        return dense_optimum(spec, n)

    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        """An in-process `SbmlLab`; `cache_dir` is honoured, `workers` ignored (a run takes milliseconds)."""
        from ._lab import SbmlLab

        self.validate_spec(spec)
        return SbmlLab(spec, self.options(spec), cache_dir=kwargs.get("cache_dir"), name=kwargs.get("name", "sbml"))

    # -- the world model ------------------------------------------------------------------------
    def inputs(self, spec: CampaignSpec, interventions: Sequence[Intervention], times_min: Sequence[float]) -> Any:
        """Per intervention, what each input target receives on each interval between `times_min`:
        shape (n, K, C), C = the distinct input targets in spec order (held values time-averaged,
        bolus doses summed). None when every input acts only at time 0."""
        options, info = self.model(spec)
        if all(i.how == "initial" for i in options.inputs):
            return None
        targets = list(dict.fromkeys(info.resolve(i.target, "inputs").id for i in options.inputs))
        base = model_initial(info, options)
        plans = [plan_of(options, info, x.canonical(), base) for x in interventions]
        return (
            np.stack([input_channels(p, targets, times_min) for p in plans])
            if plans
            else np.zeros((0, len(times_min) - 1, len(targets)))
        )


def _model_problems(spec: CampaignSpec, options: SbmlOptions, info: ModelInfo) -> list[str]:
    """Ids, variables and the time unit: everything the options say that the model or spec contradicts."""
    problems = []
    for sid in options.observe:
        problems += _try(info.resolve, sid, "observe")
    for inp in options.inputs:
        problems += _try(_settable, info, inp.target)
    variables = {v.name: v for v in spec.interventions}
    used = options.variables()
    for name in sorted(used - set(variables)):
        problems.append(
            f"world_options.inputs read variable {name!r}, which the spec does not declare; its variables: {sorted(variables)}"
        )
    for name in sorted(used & set(variables)):
        if not variables[name].is_numeric:
            problems.append(f"world_options.inputs read variable {name!r}, which is {variables[name].kind}; inputs need numbers")
    for name in sorted(set(variables) - used):
        problems.append(f"variable {name!r} drives no input; name it in a world_options.inputs entry or remove it")
    problems += _try(_model_units_per_minute, info, options)
    return problems


def _settable(info: ModelInfo, target: str) -> None:
    symbol = info.resolve(target, "inputs")
    if symbol.ruled:
        raise SpecError(
            f"world_options.inputs: {symbol.id} is computed by a rule of the model; an input cannot set it. "
            "Set one of the quantities its rule reads instead"
        )


def _try(check: Any, *args: Any) -> list[str]:
    """[the message] when `check(*args)` raises a SpecError (or a simulator's RuntimeError), else []."""
    try:
        check(*args)
    except (SpecError, RuntimeError) as exc:
        return [str(exc)]
    return []
