"""World `cell`: a virtual cell steered by transcription-factor cocktails (Krumsiek 2011, shipped in scanpy).

    CellWorld           the world: options, series (each gene's mean), fate readouts, lab, oracle
    CellOptions         world_options: target fate, start population, cells, steps, clamp window, noise
    load_network        scanpy's model file, parsed by scanpy, as arrays; `Network.simulate` steps many cells
    run_experiment      one cocktail on a population -> AnnData (fate in obs, time course in obsm)
    oracle              every cocktail of a spec simulated (the bench's reference)

Shipped campaign (`specs/reprogram.yaml`): committed cells to >= 90% erythrocytes. Needs `wetloop[cell]`.
"""

from importlib.util import find_spec

if find_spec("scanpy") is None:  # the registry turns this into "install wetloop[cell]"
    raise ImportError("world 'cell' needs scanpy (its model file and parser)", name="scanpy")

from ._experiment import run_experiment  # noqa: E402
from ._network import Network, load_network  # noqa: E402
from ._options import FATES, CellOptions  # noqa: E402
from ._oracle import CellOracle, all_cocktails, oracle  # noqa: E402
from ._world import SPECS_DIR, CellWorld  # noqa: E402

__all__ = [
    "FATES",
    "SPECS_DIR",
    "CellOptions",
    "CellOracle",
    "CellWorld",
    "Network",
    "all_cocktails",
    "load_network",
    "oracle",
    "run_experiment",
]
