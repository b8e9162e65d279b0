"""The custom world: any variables, readouts and time courses, declared in the spec, with no code.

The spec declares the intervention space (`interventions`), what the lab reports (`readouts` it
returns as numbers, `series` it returns as time courses, and readouts computed from them), safety
limits and costs. The lab is either a Python function (`world_options.function`, see
`lab_adapters.FunctionLab`) or a lab reached through a protocol (`lab: {adapter: http | sila}`). The
world model is the generic family the spec's readouts call for: a time-course ensemble over the
declared series, or a scalar ensemble / GP over scalar readouts (`world_model` in the spec).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from wetloop.campaign import Budget, CampaignSpec, SpecError, load_spec

from .._base import World, WorldOptions

__all__ = ["CustomWorld", "CustomOptions"]


class CustomOptions(WorldOptions):
    """`function`: `"package.module:name"` or `"path/to/file.py:name"` run for each experiment; leave it
    out when the spec's `lab` points at a protocol adapter."""

    function: str | None = Field(default=None, max_length=500)


class CustomWorld(World):
    name = "custom"
    summary = "a scientist's own experiment: variables, readouts and time courses declared in the spec"
    Options = CustomOptions

    def check_spec(self, spec: CampaignSpec) -> list[str]:
        problems = super().check_spec(spec)
        if not spec.readouts:
            problems.append("a custom world needs the spec's readouts: list each number the lab reports or computes")
        open_names = [v.name for v in spec.interventions if v.kind == "categorical" and v.choices is None]
        if open_names:
            problems.append(f"categorical variable(s) {open_names} need choices in a custom world (nothing else knows the names)")
        options = self.options(spec) if not problems else None
        if options is not None and options.function is None and spec.lab.adapter == "local":
            problems.append(
                "give world_options.function (a Python function that runs one experiment), "
                "or point spec.lab at a lab adapter (http, sila)"
            )
        return problems

    def example_spec(self) -> CampaignSpec | None:
        spec = load_spec(Path(__file__).parent / "specs" / "oral_dosing.yaml")
        return spec.with_overrides(budget=Budget(rounds=2, batch=3))

    def dense_optimum(self, spec: CampaignSpec, n: int = 1024) -> Any:
        """The best safe answer among `n` experiments drawn uniformly in the hard limits, run through the
        spec's function (a reference for benches; only for a function lab: an instrument is not cheap)."""
        if self.options(spec).function is None:  # a lab over a protocol: nothing cheap to simulate
            return None
        from ._dense import dense_optimum

        return dense_optimum(spec, self.make_lab(spec), n)

    def make_lab(self, spec: CampaignSpec, **kwargs: Any) -> Any:
        from wetloop.lab_adapters import FunctionLab, load_function

        options = self.options(spec)
        if options.function is None:
            raise SpecError("world_options.function is not set: a custom world runs locally only through a function")
        return FunctionLab(spec, load_function(options.function), cache_dir=kwargs.get("cache_dir"))
