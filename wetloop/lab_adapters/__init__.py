"""Lab adapters: run experiments and bring back observations. Never imports torch.

    Lab             the protocol (submit -> Ticket, poll -> Observation | None, cancel, close)
    FunctionLab     a scientist's own Python function as a lab (results kept on disk, so a resume runs nothing twice)
    SimulatedLab    in-process fake around any function: the fake other rooms' tests use
    make_executor   where a simulated world's lab runs its experiments: ProcessExecutor (worker processes
                    here) or RayExecutor (one Ray task each, run once by experiment key; extra `ray`)
    make_lab        the lab for `spec.world` (its world's `make_lab`, or a run-time lab registered with
                    register_world), or for `spec.lab.adapter`
    bench_server    an adapter's `serve_for_bench`: a loopback server for `wetloop bench adapters`

Protocol adapters (`wetloop.lab_adapters.http` ...) are imported lazily by `make_lab`: each needs an extra.
    sila.SilaLab    a SiLA 2 server's ExperimentRunner feature; sila.SilaLabServer serves a local world (extra `sila`)
    plr.PlateLab    wells of a 96-well plate on PyLabRobot's simulated liquid handler and reader (extra `pylabrobot`)
"""

from ._bench_servers import BenchServe, bench_server, server_lab_dir
from ._disk import DayStore
from ._executors import Executor, ExecutorOptions, ProcessExecutor, executor_options, make_executor
from ._function import FunctionLab, load_function
from ._protocol import Lab, wait_for
from ._registry import ADAPTERS, WORLDS, LabFactory, known_worlds, lab_problems, make_lab, register_world
from ._settings import LabSettings, default_cache_dir
from ._simulated import SimulatedLab, World
from .errors import (
    BenchServerUnavailable,
    ExperimentRejected,
    LabClosed,
    LabError,
    LabProtocolError,
    LabTimeout,
    LabUnreachable,
    LiquidHandlingError,
    MalformedResult,
    TipError,
    UnknownTicket,
    VolumeError,
    WorkerLost,
    WorldMismatch,
    WorldNotFound,
    WorldOptionError,
)

__all__ = [
    "FunctionLab",
    "load_function",
    "DayStore",
    "Executor",
    "ExecutorOptions",
    "ProcessExecutor",
    "WorkerLost",
    "executor_options",
    "make_executor",
    "ADAPTERS",
    "BenchServe",
    "BenchServerUnavailable",
    "ExperimentRejected",
    "Lab",
    "LabClosed",
    "LabError",
    "LabFactory",
    "LabProtocolError",
    "LabSettings",
    "LabTimeout",
    "LabUnreachable",
    "LiquidHandlingError",
    "MalformedResult",
    "SimulatedLab",
    "TipError",
    "UnknownTicket",
    "VolumeError",
    "WORLDS",
    "World",
    "WorldMismatch",
    "WorldNotFound",
    "WorldOptionError",
    "bench_server",
    "default_cache_dir",
    "make_lab",
    "lab_problems",
    "known_worlds",
    "register_world",
    "server_lab_dir",
    "wait_for",
]
