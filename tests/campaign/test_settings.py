"""Every settings class refuses a misspelt setting, as a keyword or as a variable under its own prefix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wetloop.agent.configuration import AgentSettings, LLMSettings
from wetloop.lab_adapters import LabSettings
from wetloop.planners import PlannerConfig
from wetloop.worldmodel import ScalarModelConfig, SeriesModelConfig
from wetloop.worlds.crispr_screen import ScreenPlannerConfig
from wetloop.worlds.simglucose import WorldModelConfig

CLASSES = (
    AgentSettings,
    LLMSettings,
    LabSettings,
    PlannerConfig,
    ScalarModelConfig,
    SeriesModelConfig,
    WorldModelConfig,
    ScreenPlannerConfig,
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_misspelt_keyword_is_refused(cls) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls(ig_wieght=5)


@pytest.mark.parametrize(
    "cls, prefix",
    [
        (LLMSettings, "WETLOOP_LLM_"),
        (PlannerConfig, "WETLOOP_PLANNER_"),
        (WorldModelConfig, "WETLOOP_WORLDMODEL_"),
        (LabSettings, "WETLOOP_LAB_"),
        (ScreenPlannerConfig, "WETLOOP_SCREENPLANNER_"),
    ],
)
def test_a_misspelt_variable_under_the_prefix_is_refused(cls, prefix, monkeypatch) -> None:
    monkeypatch.setenv(prefix + "NO_SUCH_SETTING", "1")
    with pytest.raises(ValidationError, match=f"{prefix}NO_SUCH_SETTING"):
        cls()


def test_the_shared_prefix_leaves_other_rooms_variables_alone(monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_DATA_DIR", "/somewhere")
    monkeypatch.setenv("WETLOOP_PLANNER_IG_WEIGHT", "0.02")
    assert AgentSettings().review is False and PlannerConfig().ig_weight == 0.02
