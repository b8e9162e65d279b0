"""Finding a model, turning a COPASI file into SBML, and reading what the loop needs from the SBML.

    model: path/to/model.xml        an SBML file
    model: path/to/model.cps        a COPASI file, converted to SBML with basico (cached by content)
    model: basico:NF-kappaB.cps     a file shipped inside an installed package (here basico's data/)

The time unit is read from the file (SBML L3 `model@timeUnits`; L2's redefinable `time` unit, whose
default is the second), because a model in seconds run on a minute clock is wrong by 60x, silently.
For a COPASI file it is read from the .cps itself (`<Model timeUnit="min">`): COPASI 4.48 exports
minutes to SBML as 60 x 10^-3 s, so the converted SBML cannot be trusted on this point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import locale
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wetloop.campaign import SpecError

__all__ = ["ModelInfo", "Symbol", "model_info", "resolve_model_path", "sbml_cache_dir", "sbml_text"]

_PREFIX = {-9: "n", -6: "µ", -3: "m", 0: "", 3: "k"}
_SYMBOL = {"mole": "mol", "litre": "l", "liter": "l", "second": "s", "gram": "g", "item": "#", "dimensionless": ""}


def sbml_cache_dir() -> Path:
    """Where converted models live: `$XDG_CACHE_HOME/wetloop/sbml` (or `~/.cache/wetloop/sbml`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wetloop" / "sbml"


# -- finding the file -----------------------------------------------------------------------------
def resolve_model_path(ref: str) -> Path:
    """The file `ref` names: a path, or `package:relative/path` inside an installed package (for
    basico, its `data/` folder is searched too). Raises SpecError saying what was looked for."""
    package, sep, rest = ref.partition(":")
    if sep and len(package) > 1 and package.isidentifier():
        return _packaged(package, rest)
    path = Path(ref).expanduser()
    if not path.is_file():
        raise SpecError(
            f"world_options.model: no file {str(path)!r}; give an SBML/.cps path, or a packaged model "
            "such as 'basico:NF-kappaB.cps'"
        )
    return path


def _packaged(package: str, rest: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SpecError(
            f"world_options.model: package {package!r} is not installed; install it "
            f"(for basico: pip install copasi-basico, or the extra wetloop[sbml])"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / rest, root / "data" / rest):
        if candidate.is_file():
            return candidate
    shipped = sorted(p.name for p in root.rglob("*") if p.suffix in (".cps", ".xml", ".sbml"))
    close = difflib.get_close_matches(rest, shipped, n=5, cutoff=0.4)
    raise SpecError(f"world_options.model: {package} ships no {rest!r}; close: {close or shipped[:20]}")


# -- COPASI -> SBML ----------------------------------------------------------------------------------
def sbml_text(path: Path, cache_dir: Path | None = None) -> str:
    """The model as SBML text; a .cps file is converted by basico once and cached by its content hash."""
    if path.suffix.lower() != ".cps":
        return path.read_text(encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    out = (cache_dir or sbml_cache_dir()) / "models" / f"{path.stem}-{digest}.xml"
    if not out.is_file():
        _write_atomic(out, _convert_cps(path).encode("utf-8"))
    return out.read_text(encoding="utf-8")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and `os.replace`, so a reader never sees half a model. (Bytes, not
    `_disk.write_atomic`'s text: that one uses the locale's encoding, and models hold non-ASCII names.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _convert_cps(path: Path) -> str:
    with _locale_kept():  # importing COPASI sets the C locale: Python's open() would then write ASCII only
        try:
            import basico
        except ImportError:
            raise SpecError(
                f"{path.name} is a COPASI file; converting it needs basico: pip install copasi-basico "
                "(or the extra wetloop[sbml])"
            ) from None
        dm = basico.load_model(str(path))
        if dm is None:
            raise SpecError(f"COPASI could not read {path}; open it in COPASI to see why")
        try:
            return basico.model_io.save_model_to_string(type="sbml", model=dm)
        finally:
            basico.remove_datamodel(dm)


@contextlib.contextmanager
def _locale_kept() -> Iterator[None]:
    """Restore the process locale after COPASI changed it (it breaks every later text file read)."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


# -- what the SBML says -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Symbol:
    """One thing an input may set or a series observe: a species or a global parameter."""

    id: str
    name: str
    kind: str  # "species" or "parameter"
    unit: str = ""
    ruled: bool = False  # set by an assignment/rate rule: an input cannot set it


@dataclass(frozen=True)
class ModelInfo:
    """What the loop reads off a model: its symbols, its time unit, and its SBML (hashed)."""

    ref: str
    sbml: str
    sha: str
    seconds_per_time_unit: float | None
    time_unit: str
    symbols: dict[str, Symbol] = field(default_factory=dict)

    def resolve(self, key: str, what: str) -> Symbol:
        """The symbol with id `key`, else the one whose SBML name is `key`; SpecError with close matches."""
        if key in self.symbols:
            return self.symbols[key]
        by_name = [s for s in self.symbols.values() if s.name == key]
        if len(by_name) == 1:
            return by_name[0]
        known = sorted(self.symbols) + sorted({s.name for s in self.symbols.values()} - set(self.symbols))
        close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
        hint = f"did you mean {close}?" if close else f"species and parameters: {sorted(self.symbols)[:40]}"
        raise SpecError(f"world_options.{what}: {key!r} is no species or global parameter of {self.ref}; {hint}")


@functools.lru_cache(maxsize=16)
def _cached_info(ref: str, path: str, mtime: float, cache_dir: str | None) -> ModelInfo:
    text = sbml_text(Path(path), Path(cache_dir) if cache_dir else None)
    info = parse_sbml(ref, text)
    if Path(path).suffix.lower() == ".cps":
        seconds, label = _copasi_time_unit(Path(path))
        info = dataclasses.replace(info, seconds_per_time_unit=seconds, time_unit=label)
    return info


_COPASI_TIME_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def _copasi_time_unit(path: Path) -> tuple[float | None, str]:
    """Seconds per time unit of a COPASI file, from its `<Model timeUnit=...>`."""
    for _, node in ET.iterparse(path, events=("start",)):
        if _local(node.tag) == "Model":
            label = node.get("timeUnit", "undeclared")
            return _COPASI_TIME_S.get(label), label
    return None, "undeclared"


def model_info(ref: str, cache_dir: Path | None = None) -> ModelInfo:
    """The model `ref` names, read (and converted) once per process and file version."""
    path = resolve_model_path(ref)
    return _cached_info(ref, str(path.resolve()), path.stat().st_mtime, str(cache_dir) if cache_dir else None)


def parse_sbml(ref: str, text: str) -> ModelInfo:
    """Symbols, units and time unit of an SBML document (any level/version; namespaces ignored)."""
    try:
        root = ET.fromstring(text.encode())
    except ET.ParseError as exc:
        raise SpecError(f"{ref} is not readable SBML: {exc}") from None
    model = _child(root, "model")
    if model is None:
        raise SpecError(f"{ref} holds no SBML <model>")
    units = {u.get("id", ""): u for u in _all(model, "unitDefinition")}
    seconds, label = _time_unit(root, model, units)
    symbols = _symbols(model, units)
    sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    return ModelInfo(ref=ref, sbml=text, sha=sha, seconds_per_time_unit=seconds, time_unit=label, symbols=symbols)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c.tag) == name), None)


def _all(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node.iter() if _local(c.tag) == name]


def _time_unit(root: ET.Element, model: ET.Element, units: dict[str, ET.Element]) -> tuple[float | None, str]:
    """Seconds per model time unit, and its label; (None, "undeclared") when the file does not say."""
    level = int(root.get("level", "3"))
    ref = model.get("timeUnits") if level >= 3 else ("time" if "time" in units else "second")
    if ref is None:
        return None, "undeclared"
    if ref in ("second", "dimensionless") and ref not in units:
        return (1.0, "s") if ref == "second" else (None, "dimensionless")
    parts = [u for u in _all(units[ref], "unit")] if ref in units else []
    if len(parts) != 1 or parts[0].get("kind") != "second":
        return None, f"unreadable ({ref})"
    u = parts[0]
    factor = (float(u.get("multiplier", "1")) * 10 ** int(float(u.get("scale", "0")))) ** float(u.get("exponent", "1"))
    return factor, _unit_label(ref, units) or "s"


def _unit_label(ref: str | None, units: dict[str, ET.Element]) -> str:
    """`µmol`, `ml`, `h` ... for a one-part unit definition (or a base unit); "" when it is compound."""
    if ref is None:
        return ""
    if ref not in units:
        return _SYMBOL.get(ref, ref)
    parts = _all(units[ref], "unit")
    if len(parts) != 1 or float(parts[0].get("exponent", "1")) != 1:
        return ""
    u = parts[0]
    mult, scale, kind = float(u.get("multiplier", "1")), int(float(u.get("scale", "0"))), u.get("kind", "")
    if kind == "second" and mult in (60.0, 3600.0, 86400.0) and scale == 0:
        return {60.0: "min", 3600.0: "h", 86400.0: "day"}[mult]
    prefix = _PREFIX.get(scale)
    return f"{prefix}{_SYMBOL.get(kind, kind)}" if mult == 1 and prefix is not None else ""


def _symbols(model: ET.Element, units: dict[str, ET.Element]) -> dict[str, Symbol]:
    level3 = model.get("substanceUnits") is not None or model.get("volumeUnits") is not None
    substance = _unit_label(model.get("substanceUnits") if level3 else ("substance" if "substance" in units else "mole"), units)
    volume = _unit_label(model.get("volumeUnits") if level3 else ("volume" if "volume" in units else "litre"), units)
    ruled = {r.get("variable") for tag in ("assignmentRule", "rateRule") for r in _all(model, tag)}
    out: dict[str, Symbol] = {}
    for sp in _all(model, "species"):
        sid = sp.get("id", "")
        unit = f"{substance}/{volume}" if substance and volume else ""
        out[sid] = Symbol(sid, sp.get("name", sid), "species", unit, sid in ruled)
    params = _child(model, "listOfParameters")
    for p in list(params) if params is not None else []:
        pid = p.get("id", "")
        out[pid] = Symbol(pid, p.get("name", pid), "parameter", _unit_label(p.get("units"), units), pid in ruled)
    return out
