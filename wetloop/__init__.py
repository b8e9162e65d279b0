"""wetloop: a closed-loop discovery agent for biomedicine (see README.md and DESIGN.md).

The rooms are subpackages: campaign (the shared language and store), worldmodel, planners,
lab_adapters, agent (the loop, CLI, reports), prompts, and worlds (one folder per kind of experiment).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wetloop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
