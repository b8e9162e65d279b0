"""World `sbml`: any SBML model (or COPASI file) as a lab, run by libroadrunner.

    SbmlWorld       the world: options, series with the model's units, the lab, the input channels
    SbmlOptions     world_options: model, observe, times (minutes), inputs, noise, time_unit_override
    SbmlLab         runs each experiment in-process; noise-free runs cached on disk by content
    dense_optimum   the best safe objective over a dense Sobol design (the bench's reference)
    model_info      what the loop reads off a model: ids, names, units, the time unit

Shipped campaigns (`specs/`): `nfkb_pulses.yaml` (IKK pulse trains into the NF-kB network of
Hoffmann 2002 / Nelson 2004, basico's NF-kappaB.cps) and `mapk_switch.yaml` (the Huang-Ferrell 1996
MAPK cascade, basico's MAPK-HF96-layout.cps). Needs the extra `wetloop[sbml]`.
"""

from pathlib import Path

from ._lab import SbmlLab, run_key
from ._model import ModelInfo, Symbol, model_info, resolve_model_path
from ._optimum import DenseOptimum, dense_optimum
from ._options import (
    BolusInput,
    ConstantInput,
    InitialInput,
    Noise,
    PulsesInput,
    SbmlOptions,
    Scaled,
    TimeGrid,
)
from ._world import SbmlWorld

SPECS_DIR = Path(__file__).parent / "specs"
"""The shipped campaign specs of this world."""

__all__ = [
    "SPECS_DIR",
    "BolusInput",
    "ConstantInput",
    "DenseOptimum",
    "InitialInput",
    "ModelInfo",
    "Noise",
    "PulsesInput",
    "SbmlLab",
    "SbmlOptions",
    "SbmlWorld",
    "Scaled",
    "Symbol",
    "TimeGrid",
    "dense_optimum",
    "model_info",
    "resolve_model_path",
    "run_key",
]
