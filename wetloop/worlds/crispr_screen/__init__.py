"""The crispr_screen world: a published genome-wide CRISPR screen played back as a lab. Only the world
class loads with the package; every other name loads its module on first use (`_lazy.py`)."""

from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports
from ._world import ScreenOptions, ScreenWorld

if TYPE_CHECKING:
    from ._datasets import DATA_FILES, DataFile, data_cache_dir, fetch_data, sha256_prefix
    from ._features import DYNAMIC_NAMES, ScreenFeatures
    from ._genes import COLLECTIONS, GeneKnowledge, knowledge_cache_dir
    from ._hgnc import MappingReport, Screen, SymbolMap, load_essentials, load_screen, screen_names, symbol_map
    from ._lab import ScreenLab, screen_of
    from ._model import ScreenEnsembleModel, ScreenFitReport, ScreenModelConfig, ScreenWorldModel, screen_features
    from ._planner import (
        ScreenAcquisition,
        ScreenPlanner,
        ScreenPlannerConfig,
        ScreenWorldLike,
        bernoulli_information_gain,
        thompson_batch,
    )
    from ._text import EMBEDDER, embed_texts, set_name_text, text_similarity

_MODULES = {
    "._datasets": ("DATA_FILES", "DataFile", "data_cache_dir", "fetch_data", "sha256_prefix"),
    "._features": ("DYNAMIC_NAMES", "ScreenFeatures"),
    "._genes": ("COLLECTIONS", "GeneKnowledge", "knowledge_cache_dir"),
    "._hgnc": ("MappingReport", "Screen", "SymbolMap", "load_essentials", "load_screen", "screen_names", "symbol_map"),
    "._lab": ("ScreenLab", "screen_of"),
    "._model": ("ScreenEnsembleModel", "ScreenFitReport", "ScreenModelConfig", "ScreenWorldModel", "screen_features"),
    "._planner": (
        "ScreenAcquisition",
        "ScreenPlanner",
        "ScreenPlannerConfig",
        "ScreenWorldLike",
        "bernoulli_information_gain",
        "thompson_batch",
    ),
    "._text": ("EMBEDDER", "embed_texts", "set_name_text", "text_similarity"),
}
_load = lazy_exports(__name__, _MODULES)


def __getattr__(name: str) -> Any:
    return _load(name)


__all__ = [
    "ScreenWorld",
    "ScreenOptions",
    "COLLECTIONS",
    "DATA_FILES",
    "DYNAMIC_NAMES",
    "DataFile",
    "EMBEDDER",
    "GeneKnowledge",
    "MappingReport",
    "Screen",
    "ScreenAcquisition",
    "ScreenEnsembleModel",
    "ScreenFeatures",
    "ScreenFitReport",
    "ScreenLab",
    "ScreenModelConfig",
    "ScreenPlanner",
    "ScreenPlannerConfig",
    "ScreenWorldLike",
    "ScreenWorldModel",
    "SymbolMap",
    "bernoulli_information_gain",
    "data_cache_dir",
    "embed_texts",
    "fetch_data",
    "knowledge_cache_dir",
    "load_essentials",
    "load_screen",
    "screen_features",
    "screen_names",
    "screen_of",
    "set_name_text",
    "sha256_prefix",
    "symbol_map",
    "text_similarity",
    "thompson_batch",
]
