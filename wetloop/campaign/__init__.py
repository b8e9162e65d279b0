"""The shared language of the loop and the campaign store. Imports no other room."""

from ._records import (
    Decision,
    Experiment,
    Hypothesis,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    SafetyRemoval,
    ScoreBreakdown,
    Ticket,
    Trajectory,
    Transition,
)
from ._dosing import DosingSchedule, dosing_schedule, meals_of
from ._spec import Budget, CampaignSpec, Cost, Objective, SafetyLimit, Variable, default_spec_path, load_spec
from ._store import KINDS, CampaignStore, StoredRecord
from .errors import (
    AppendOnlyViolation,
    CampaignNotFound,
    InterventionError,
    SpecError,
    StoreError,
    WetloopError,
)

__all__ = [
    "AppendOnlyViolation",
    "Budget",
    "CampaignNotFound",
    "CampaignSpec",
    "CampaignStore",
    "Cost",
    "Decision",
    "DosingSchedule",
    "Experiment",
    "Hypothesis",
    "Intervention",
    "InterventionError",
    "KINDS",
    "Objective",
    "Observation",
    "Proposal",
    "RankedProposal",
    "Ranking",
    "SafetyLimit",
    "SafetyRemoval",
    "ScoreBreakdown",
    "SpecError",
    "StoreError",
    "StoredRecord",
    "Ticket",
    "Trajectory",
    "Transition",
    "Variable",
    "WetloopError",
    "default_spec_path",
    "dosing_schedule",
    "load_spec",
    "meals_of",
]
