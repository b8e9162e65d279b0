from __future__ import annotations

import pytest
from rich.console import Console

from wetloop.agent import Campaign
from wetloop.campaign import AtCeiling, Budget, default_spec_path, load_spec
from wetloop.lab_adapters import SimulatedLab
from wetloop.worlds.simglucose import WorldModelConfig

from .fakes import toy_glucose_day

FAST_WORLD = WorldModelConfig(members=5, hidden=32, layers=2, epochs=10, min_steps=150, particles=4)


SPEND_THE_BUDGET = AtCeiling(action="explore")
"""For tests that audit a whole budget: the toy glucose day reaches a time in range of 1.0 in round 1,
where the default (`stop`) would end the campaign; `explore` goes on (tests/agent/test_ceiling.py tests
each action)."""


@pytest.fixture()
def spec():
    return load_spec(default_spec_path()).with_overrides(budget=Budget(rounds=3, batch=3), at_ceiling=SPEND_THE_BUDGET)


@pytest.fixture()
def fake_labs():
    """A lab factory for Campaign(...) that keeps the labs it made, so tests can count runs."""
    made: list[SimulatedLab] = []

    def factory(spec, run_dir):
        lab = SimulatedLab(spec, lambda x: toy_glucose_day(spec, x), polls_until_done=1)
        made.append(lab)
        return lab

    factory.made = made  # type: ignore[attr-defined]
    return factory


@pytest.fixture()
def quiet():
    return Console(stderr=True, quiet=True)


@pytest.fixture()
def small_campaign(spec, tmp_path, fake_labs, quiet):
    """`small_campaign(rounds, batch, **kwargs)`: a new campaign of `spec` in `tmp_path/run` on the toy lab
    with the fast world model (`kwargs` go to `Campaign.create`, e.g. a proposer or a console)."""

    def make(rounds: int, batch: int, **kwargs):
        kwargs.setdefault("console", quiet)
        budget = {"rounds": rounds, "batch": batch}
        return Campaign.create(
            spec.with_overrides(budget=budget), tmp_path / "run", lab_factory=fake_labs, world_config=FAST_WORLD, **kwargs
        )

    return make
