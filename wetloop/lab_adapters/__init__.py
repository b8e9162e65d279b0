"""Lab adapters: run experiments and bring back observations. Never imports torch.

    Lab             the protocol (submit -> Ticket, poll -> Observation | None, cancel, close)
    SimulatedLab    in-process fake around any function: the fake other rooms' tests use
    SimglucoseLab   the virtual patient (simglucose 0.2.11): parallel, cached, journaled days
    reference_day   the same day under simglucose's own basal-bolus controller (the benchmark's reference)
    make_lab        the lab for `spec.world` (registry: WORLDS, register_world)
"""

from ._options import DayOptions, day_options, patient_names
from ._protocol import Lab, wait_for
from ._registry import WORLDS, LabFactory, make_lab, register_world
from ._settings import LabSettings, default_cache_dir
from ._simglucose import SimglucoseLab, reference_day
from ._simulated import SimulatedLab, World
from .errors import (
    ExperimentRejected,
    LabClosed,
    LabError,
    LabTimeout,
    MalformedResult,
    UnknownTicket,
    WorldNotFound,
    WorldOptionError,
)

__all__ = [
    "DayOptions",
    "ExperimentRejected",
    "Lab",
    "LabClosed",
    "LabError",
    "LabFactory",
    "LabSettings",
    "LabTimeout",
    "MalformedResult",
    "SimglucoseLab",
    "SimulatedLab",
    "UnknownTicket",
    "WORLDS",
    "World",
    "WorldNotFound",
    "WorldOptionError",
    "day_options",
    "default_cache_dir",
    "make_lab",
    "patient_names",
    "reference_day",
    "register_world",
    "wait_for",
]
