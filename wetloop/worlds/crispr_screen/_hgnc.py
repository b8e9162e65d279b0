"""Gene symbols and screens: map any screen's symbols to current HGNC symbols, and read a screen.

`SymbolMap` maps a symbol to its approved HGNC symbol: an approved symbol maps to itself; otherwise
a previous symbol, then an alias. A previous or alias symbol shared by several approved genes is
ambiguous: it maps to the alphabetically first of them (deterministic) and is counted. Matching is
case-insensitive.

A symbol that a spreadsheet turned into a date (`1-Dec`, `01.Mar`, `Sep-15`: the number and the month
in either order) is read back as the symbols that would have become it: any month-name prefix of three
letters or more followed by the number (MAR1, MARC1, MARCH1 ...). Those that are approved symbols win,
else previous symbols, else aliases (the same order as above); the date maps where they all lead to one
approved gene (`1-Dec` -> DEC1 -> DELEC1, `3-Mar` -> MARCH3 -> MARCHF3, `15-Sep` -> SEP15 -> SELENOF) and
is left unmapped, with its candidates reported, where they lead to several (`1-Mar`: MARCH1 -> MARCHF1
or MARC1 -> MTARC1). `load_screen` reads a screen in the BioDiscoveryAgent format and refuses a
gene-pair screen.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wetloop.campaign.errors import DataFileError

from ._datasets import DATA_FILES, fetch_data, local_data

__all__ = [
    "SymbolMap",
    "MappingReport",
    "Screen",
    "load_screen",
    "load_essentials",
    "symbol_map",
    "screen_names",
    "spreadsheet_date",
    "screen_problems",
]

HIT_FRACTION = 0.05  # hits when a screen ships no topmovers file: the top 5% by |score|
PAIR_SHARE = 0.5  # a screen where more rows than this name two genes is a gene-pair screen
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_DATE = re.compile(r"(\d{1,2})[-./ ]([a-z]{3,9})|([a-z]{3,9})[-./ ](\d{1,2})", re.IGNORECASE)
_TUPLE_PAIR = re.compile(r"\(\s*'[^']+'\s*,\s*'[^']+'\s*\)")  # ('AARS2', 'AATF'): BioDiscoveryAgent's Horlbeck file
_UNDERSCORE_PAIR = re.compile(r"[^_\s]+_[^_\s]+")  # AARS2_AATF


def spreadsheet_date(symbol: str) -> tuple[str, int] | None:
    """(month name, number) where `symbol` reads as a date a spreadsheet made of a gene symbol
    (`1-Dec`, `01.Mar`, `10 Sep`, `Sep-15`), else None."""
    m = _DATE.fullmatch(symbol.strip())
    if m is None:
        return None
    number, word = (m[1], m[2]) if m[1] else (m[4], m[3])
    month = next((name for name in _MONTHS if name.startswith(word.lower())), None)
    return (month, int(number)) if month is not None and int(number) > 0 else None


@dataclass(frozen=True)
class MappingReport:
    """How a list of symbols mapped: renamed (old -> new), ambiguous, unmapped, merged duplicates.

    `dates` are the symbols read as spreadsheet dates; each is also in `renamed` (mapped), `unmapped`
    (no candidate, or several: those are in `date_candidates`) or `merged` (its gene already had a row)."""

    renamed: dict[str, str] = field(default_factory=dict)
    ambiguous: tuple[str, ...] = ()
    unmapped: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    date_candidates: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def dates_mapped(self) -> dict[str, str]:
        """Date -> the approved gene it was read back as (kept in the screen)."""
        return {d: self.renamed[d] for d in self.dates if d in self.renamed}

    @property
    def dates_left(self) -> tuple[str, ...]:
        """Dates not read back: ambiguous, no candidate, or their gene already had a row."""
        return tuple(d for d in self.dates if d not in self.renamed)

    def dates_summary(self) -> dict[str, int]:
        return {"found": len(self.dates), "mapped": len(self.dates_mapped), "left": len(self.dates_left)}


class SymbolMap:
    """Symbol -> approved HGNC symbol; see the module docstring for the rules."""

    def __init__(self, approved: set[str], previous: dict[str, list[str]], alias: dict[str, list[str]]) -> None:
        self.approved = frozenset(approved)
        self._upper = {s.upper(): s for s in approved}
        self._previous = {k: sorted(set(v)) for k, v in previous.items()}
        self._alias = {k: sorted(set(v)) for k, v in alias.items()}
        self._tables = ({k: [v] for k, v in self._upper.items()}, self._previous, self._alias)

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

    def undate(self, symbol: str) -> tuple[str | None, tuple[str, ...]] | None:
        """None where `symbol` is no spreadsheet date; else (the approved gene it is read back as, or None
        when none or several fit, the approved genes that fit): see the module docstring."""
        date = spreadsheet_date(symbol)
        if date is None:
            return None
        month, number = date
        names = {f"{month[:k]}{number}".upper() for k in range(3, len(month) + 1)}
        for table in self._tables:
            genes = tuple(sorted({g for name in names for g in table.get(name, ())}))
            if genes:
                return (genes[0] if len(genes) == 1 else None), genes
        return None, ()

    def resolve(self, symbol: str) -> str | None:
        """The approved symbol of `symbol` (`lookup`, then a spreadsheet date read back), or None."""
        found = self.lookup(symbol)[0]
        return found if found is not None else (self.undate(symbol) or (None, ()))[0]

    def map_many(self, symbols: list[str]) -> tuple[list[str | None], MappingReport]:
        """Map each symbol; a second symbol mapping to an already-taken approved one maps to None (merged), as
        does one mapping to a gene that another row names exactly, and a date read back as a gene another row names."""
        out: list[str | None] = []
        taken: set[str] = set()
        renamed, ambiguous, unmapped, merged, dates = {}, [], [], [], []
        candidates: dict[str, tuple[str, ...]] = {}
        exact = {self._upper[s.upper()] for s in symbols if s.upper() in self._upper}  # exact names win a collision
        looked_up = [self.lookup(s) for s in symbols]
        named = {new for new, _ in looked_up if new is not None}  # ... and any symbol wins over a date read back
        for s, (new, amb) in zip(symbols, looked_up):
            undated = self.undate(s) if new is None else None
            if undated is not None:
                dates.append(s)
                new = undated[0]
                if len(undated[1]) > 1:
                    candidates[s] = undated[1]
            if new is None:
                unmapped.append(s)
            elif new in taken or (new in exact and s.upper() != new.upper()) or (undated is not None and new in named):
                merged.append(s)
                new = None
            else:
                taken.add(new)
                ambiguous += [s] if amb else []
                if new != s:
                    renamed[s] = new
            out.append(new)
        return out, MappingReport(renamed, tuple(ambiguous), tuple(unmapped), tuple(merged), tuple(dates), candidates)


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
    """The directory holding ground_truth_<name>.csv, or None for the registry. A screen the registry
    does not know is looked for in `$WETLOOP_DATA_DIR` (or its screens/ folder) when no `data_dir` is given."""
    if data_dir is None:
        root = os.environ.get("WETLOOP_DATA_DIR")
        if f"screens/ground_truth_{name}.csv" in DATA_FILES or not root:
            return None
        data_dir = root
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


def _check_symbols(path: Path, symbols: list[str]) -> None:
    """Refuse a file this world cannot play back: no rows, or a gene-pair screen (more than half of its
    rows name two genes; a few single-gene symbols such as APOBEC3A_B or the PAR genes' CD99_X hold '_')."""
    if not symbols:
        raise DataFileError(
            f"{path} has no rows; a screen file has a header and one `gene,score` row per gene", relpath=str(path)
        )
    pairs = [g for g in symbols if _TUPLE_PAIR.fullmatch(g.strip()) or _UNDERSCORE_PAIR.fullmatch(g.strip())]
    if len(pairs) > PAIR_SHARE * len(symbols):
        raise DataFileError(
            f"{path} is a gene-pair screen (BioDiscoveryAgent's Horlbeck format: {len(pairs)} of {len(symbols)} rows "
            f"name two genes, e.g. {pairs[0]!r}); the crispr_screen world plays back single-gene screens, one knockout "
            "per experiment: give a file with one gene symbol per row",
            relpath=str(path),
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_screen(name: str, data_dir: str | Path | None = None) -> Screen:
    """Read screen `name`: from `data_dir` as given (no checksums), or from the registry (verified).

    Symbols are mapped to approved HGNC symbols, spreadsheet dates read back where that is unambiguous
    (unmapped and merged ones are dropped and reported); hits come from `topmovers_<name>.npy` when
    present, else the top 5% by |score|. A gene-pair screen, an empty file or one without a single
    known gene symbol is refused with `DataFileError`.
    """
    d = _screen_dir(name, data_dir)
    path = _file(f"ground_truth_{name}.csv", d)
    assert path is not None  # required=True: a missing file raises
    raw_genes, raw_scores = _read_scores(path)
    _check_symbols(path, raw_genes)
    smap = symbol_map()
    mapped, report = smap.map_many(raw_genes)
    keep = [i for i, g in enumerate(mapped) if g is not None]
    if not keep:
        raise DataFileError(
            f"none of the {len(raw_genes)} symbols in {path} is an HGNC gene symbol (e.g. {raw_genes[0]!r}); "
            "the first column of a screen file is the gene's symbol",
            relpath=str(path),
        )
    genes, scores = tuple(g for g in mapped if g is not None), raw_scores[keep]
    task = json.loads(_file(f"task_prompts/{name}.json", d).read_text())  # type: ignore[union-attr]
    movers = _file(f"topmovers_{name}.npy", d, required=False)
    if movers is not None:
        # each mover mapped on its own: a listed symbol whose row was merged into another still names a hit
        library = set(genes)
        hits = frozenset(
            h for m in np.load(movers, allow_pickle=True).tolist() if (h := smap.resolve(str(m))) is not None and h in library
        )
        source = movers.name
    else:
        top = np.argsort(-np.abs(scores), kind="stable")[: int(round(HIT_FRACTION * len(scores)))]
        hits, source = frozenset(genes[i] for i in top), "top 5% by |score|"
    return Screen(name, genes, scores, hits, str(task.get("Task", "")), str(task.get("Measurement", "")), report, source)


def screen_problems(name: str, data_dir: str | Path | None = None) -> list[str]:
    """What is wrong with screen `name` that its file shows (missing, empty, a gene-pair screen), found
    without downloading anything: a registered screen not yet downloaded is checked when it is."""
    try:
        d = _screen_dir(name, data_dir)
        relpath = f"screens/ground_truth_{name}.csv"
        if d is None and relpath not in DATA_FILES:
            _file(f"ground_truth_{name}.csv", None)  # raises: not registered, no directory given
        path = d / f"ground_truth_{name}.csv" if d is not None else local_data(relpath)
        if path is not None:
            _check_symbols(path, _read_scores(path)[0])
    except DataFileError as exc:
        return [str(exc)]
    except ValueError as exc:  # a score that is no number
        return [f"{path}: {exc}; a screen file has a header and one `gene,score` row per gene"]
    return []


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
