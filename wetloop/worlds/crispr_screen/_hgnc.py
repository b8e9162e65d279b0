"""Gene symbols and screens: map any screen's symbols to current HGNC symbols, and read a screen.

`SymbolMap` maps a symbol to its approved HGNC symbol: an approved symbol maps to itself; otherwise
a previous symbol, then an alias. A previous or alias symbol shared by several approved genes is
ambiguous: it maps to the alphabetically first of them (deterministic) and is counted. Matching is
case-insensitive. `load_screen` reads a screen in the BioDiscoveryAgent format.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wetloop.campaign.errors import DataFileError

from ._datasets import DATA_FILES, fetch_data

__all__ = ["SymbolMap", "MappingReport", "Screen", "load_screen", "load_essentials", "symbol_map", "screen_names"]

HIT_FRACTION = 0.05  # hits when a screen ships no topmovers file: the top 5% by |score|


@dataclass(frozen=True)
class MappingReport:
    """How a list of symbols mapped: renamed (old -> new), ambiguous, unmapped, merged duplicates."""

    renamed: dict[str, str] = field(default_factory=dict)
    ambiguous: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()


class SymbolMap:
    """Symbol -> approved HGNC symbol; see the module docstring for the rules."""

    def __init__(self, approved: set[str], previous: dict[str, list[str]], alias: dict[str, list[str]]) -> None:
        self.approved = frozenset(approved)
        self._upper = {s.upper(): s for s in approved}
        self._previous = {k: sorted(set(v)) for k, v in previous.items()}
        self._alias = {k: sorted(set(v)) for k, v in alias.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> SymbolMap:
        """Read HGNC's `hgnc_entries.tsv` (approved entries only)."""
        approved: set[str] = set()
        previous: dict[str, list[str]] = {}
        alias: dict[str, list[str]] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["Status"] != "Approved":
                    continue
                sym = row["Approved symbol"]
                approved.add(sym)
                for table, col in ((previous, "Previous symbols"), (alias, "Alias symbols")):
                    for old in filter(None, (s.strip().upper() for s in (row[col] or "").split(","))):
                        table.setdefault(old, []).append(sym)
        return cls(approved, previous, alias)

    def lookup(self, symbol: str) -> tuple[str | None, bool]:
        """(approved symbol or None, whether the match was ambiguous)."""
        key = symbol.strip().upper()
        if key in self._upper:
            return self._upper[key], False
        for table in (self._previous, self._alias):
            if key in table:
                return table[key][0], len(table[key]) > 1
        return None, False

    def map_many(self, symbols: list[str]) -> tuple[list[str | None], MappingReport]:
        """Map each symbol; a second symbol mapping to an already-taken approved one maps to None (merged)."""
        out: list[str | None] = []
        taken: set[str] = set()
        renamed, ambiguous, unmapped, merged = {}, [], [], []
        exact = {self._upper[s.upper()] for s in symbols if s.upper() in self._upper}  # exact names win a collision
        for s in symbols:
            new, amb = self.lookup(s)
            if new is None:
                unmapped.append(s)
            elif new in taken or (new in exact and s.upper() != new.upper()):
                merged.append(s)
                new = None
            else:
                taken.add(new)
                ambiguous += [s] if amb else []
                if new != s:
                    renamed[s] = new
            out.append(new)
        return out, MappingReport(renamed, tuple(ambiguous), tuple(unmapped), tuple(merged))


@functools.cache
def _cached_map(path: str) -> SymbolMap:
    return SymbolMap.from_file(path)


def symbol_map(data_dir: str | Path | None = None) -> SymbolMap:
    """The HGNC symbol map from the registered `genes/hgnc_entries.tsv` (read once per process)."""
    return _cached_map(str(fetch_data("genes/hgnc_entries.tsv", data_dir)))


@dataclass(frozen=True)
class Screen:
    """A genome-wide screen: `genes[i]` (approved symbols) has `scores[i]`; `hits` are the screen's hits."""

    name: str
    genes: tuple[str, ...]
    scores: np.ndarray
    hits: frozenset[str]
    task: str
    measurement: str
    mapping: MappingReport
    hits_source: str

    @property
    def n_unmapped(self) -> int:
        return len(self.mapping.unmapped)

    def index(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.genes)}


def _screen_dir(name: str, data_dir: str | Path | None) -> Path | None:
    """The directory holding ground_truth_<name>.csv, or None for the registry."""
    if data_dir is None:
        return None
    for d in (Path(data_dir), Path(data_dir) / "screens"):
        if (d / f"ground_truth_{name}.csv").is_file():
            return d
    raise DataFileError(
        f"no ground_truth_{name}.csv in {data_dir} (or its screens/ folder); a screen directory holds "
        f"ground_truth_<name>.csv and task_prompts/<name>.json",
        relpath=str(data_dir),
    )


def _file(name: str, d: Path | None, required: bool = True) -> Path | None:
    if d is not None:
        path = d / name
        if not path.is_file() and required:
            raise DataFileError(f"{path} does not exist; a screen needs {name}", relpath=str(path))
        return path if path.is_file() else None
    relpath = f"screens/{name}"
    if relpath not in DATA_FILES:
        if required:
            raise DataFileError(
                f"screen file {name} is not in the registry; pass data_dir= the screen's directory", relpath=relpath
            )
        return None
    return fetch_data(relpath)


def _read_scores(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    body = rows[1:] if rows and not _is_number(rows[0][-1]) else rows
    return [r[0] for r in body], np.array([float(r[-1]) for r in body])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_screen(name: str, data_dir: str | Path | None = None) -> Screen:
    """Read screen `name`: from `data_dir` as given (no checksums), or from the registry (verified).

    Symbols are mapped to approved HGNC symbols (unmapped and merged ones are dropped and reported);
    hits come from `topmovers_<name>.npy` when present, else the top 5% by |score|.
    """
    d = _screen_dir(name, data_dir)
    raw_genes, raw_scores = _read_scores(_file(f"ground_truth_{name}.csv", d))  # type: ignore[arg-type]
    smap = symbol_map()
    mapped, report = smap.map_many(raw_genes)
    keep = [i for i, g in enumerate(mapped) if g is not None]
    genes, scores = tuple(g for g in mapped if g is not None), raw_scores[keep]
    task = json.loads(_file(f"task_prompts/{name}.json", d).read_text())  # type: ignore[union-attr]
    movers = _file(f"topmovers_{name}.npy", d, required=False)
    if movers is not None:
        # each mover mapped on its own: a listed symbol whose row was merged into another still names a hit
        library = set(genes)
        hits = frozenset(
            h for m in np.load(movers, allow_pickle=True).tolist() if (h := smap.lookup(str(m))[0]) is not None and h in library
        )
        source = movers.name
    else:
        top = np.argsort(-np.abs(scores), kind="stable")[: int(round(HIT_FRACTION * len(scores)))]
        hits, source = frozenset(genes[i] for i in top), "top 5% by |score|"
    return Screen(name, genes, scores, hits, str(task.get("Task", "")), str(task.get("Measurement", "")), report, source)


def load_essentials(data_dir: str | Path | None = None) -> frozenset[str]:
    """The CEGv2 core-essential genes (Hart et al.), mapped to approved symbols."""
    with open(fetch_data("screens/CEGv2.txt", data_dir), newline="") as fh:
        symbols = [r[0] for r in csv.reader(fh, delimiter="\t") if r and r[0] != "GENE"]
    mapped, _ = symbol_map(data_dir).map_many(symbols)
    return frozenset(g for g in mapped if g is not None)


def screen_names(data_dir: str | Path) -> list[str]:
    """The screens in a directory (or its screens/ folder): every ground_truth_<name>.csv."""
    found = [p for d in (Path(data_dir), Path(data_dir) / "screens") for p in d.glob("ground_truth_*.csv")]
    return sorted({p.name[len("ground_truth_") : -len(".csv")] for p in found})
