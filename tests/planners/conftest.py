"""Fixtures of the planner's tests; the fakes themselves live in `fakes.py`."""

from __future__ import annotations

import pytest

from wetloop.campaign import CampaignSpec

from .fakes import FakeWorld, make_spec


@pytest.fixture
def spec() -> CampaignSpec:
    return make_spec()


@pytest.fixture
def world(spec: CampaignSpec) -> FakeWorld:
    return FakeWorld(spec)
