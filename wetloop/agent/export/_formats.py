"""Transition records on disk: JSON Lines (no extra), Parquet (pyarrow) and AnnData `.h5ad` (anndata).

JSON Lines keeps each record as its JSON (one per line). The two tables flatten a record into columns
(`flatten`): scalar fields as they are; `intervention.<variable>` and `readouts.<readout>` one column
each; `prediction.<field>`, `approval.<field>`, `lab.<field>` one column each; a state as
`baseline.times_min`, `baseline.series.<series>` (lists of numbers) and `baseline.units`; every other
mapping or list as JSON text, its column named in the file's `json_columns`. `unflatten` inverts it.

The AnnData file holds the follow-up readouts in `X` (var: the readouts), the objective's predicted
mean, spread and interval in `layers`, each list column (the baseline and follow-up time courses and
their times) as a NaN-padded matrix in `obsm`, the other columns in `obs` (timestamps as ISO 8601
text), and the spec, the schema and the provenance in `uns["wetloop"]`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wetloop.campaign import CampaignSpec
from wetloop.campaign._transitions import SCHEMA_VERSION, QuarantineRecord, TransitionRecord, transition_schema

from ..errors import AgentError
from ._build import wetloop_version

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "ExportError",
    "flatten",
    "missing_packages",
    "read_quarantine",
    "read_transitions",
    "unflatten",
    "write_quarantine",
    "write_transitions",
]

FORMATS = {"jsonl": "transitions.jsonl", "parquet": "transitions.parquet", "h5ad": "transitions.h5ad"}
"""Each format and the file name it is written to."""
NEEDS = {"jsonl": (), "parquet": ("pyarrow",), "h5ad": ("anndata",)}
INSTALL_HINT = 'pip install "wetloop[export]"'
QUARANTINE_FILE = "quarantine.jsonl"

_SPREAD = ("intervention", "readouts")  # a mapping spread over one column per key
_STATES = ("baseline", "follow_up")  # a StateRecord: lists of numbers
_NESTED = ("prediction", "approval", "lab")  # a model: one column per field
_TIMES = ("approved_at", "submitted_at", "observed_at")


class ExportError(AgentError):
    """An export or a read of exported records that cannot go ahead (a missing package, a bad file)."""


def missing_packages(formats: Iterable[str]) -> list[str]:
    """The packages the given formats need that are not installed here."""
    import importlib.util

    return sorted({p for f in formats for p in NEEDS[f] if importlib.util.find_spec(p) is None})


def _require(fmt: str) -> None:
    if missing := missing_packages([fmt]):
        raise ExportError(f"the {fmt} format needs {', '.join(missing)}, which is not installed; install it with: {INSTALL_HINT}")


# -- flat rows --------------------------------------------------------------------------------------
def flatten(record: TransitionRecord) -> tuple[dict[str, Any], set[str]]:
    """The record as one row of columns, and the names of its columns that hold JSON text."""
    data = record.model_dump(mode="json")
    row: dict[str, Any] = {}
    as_json: set[str] = set()

    def put(name: str, value: Any) -> None:
        if isinstance(value, (dict, list)):
            row[name] = json.dumps(value, sort_keys=True)
            as_json.add(name)
        else:
            row[name] = value

    for field, value in data.items():
        if field in _TIMES:
            row[field] = getattr(record, field)
        elif field in _SPREAD:
            for key, v in value.items():
                put(f"{field}.{key}", v)
        elif field in _STATES and value is not None:
            row[f"{field}.times_min"] = value["times_min"]
            for name, values in value["series"].items():
                row[f"{field}.series.{name}"] = values
            put(f"{field}.units", value["units"])
        elif field in _NESTED and value is not None:
            for key, v in value.items():
                put(f"{field}.{key}", v)
        elif field not in _STATES + _NESTED:
            put(field, value)
    return row, as_json


def unflatten(row: dict[str, Any], json_columns: Iterable[str]) -> TransitionRecord:
    """The record of one flat row (`flatten`'s inverse); a None (or NaN) cell is a value not given."""
    as_json = set(json_columns)
    data: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if name in as_json and isinstance(value, str):
            value = json.loads(value)
        field, _, rest = name.partition(".")
        if not rest:
            data[field] = value
        elif field in _STATES and rest.startswith("series."):
            data.setdefault(field, {}).setdefault("series", {})[rest.removeprefix("series.")] = value
        else:
            data.setdefault(field, {})[rest] = value
    return TransitionRecord.model_validate(data)


def _rows(records: Sequence[TransitionRecord]) -> tuple[list[dict[str, Any]], list[str], set[str]]:
    rows, columns, as_json = [], {}, set()  # columns: a dict keeps first-seen order
    for record in records:
        row, js = flatten(record)
        rows.append(row)
        columns.update(dict.fromkeys(row))
        as_json |= js
    return rows, list(columns), as_json


def _meta(spec: CampaignSpec, campaign_id: str, as_json: set[str]) -> dict[str, str]:
    return {
        "schema_version": SCHEMA_VERSION,
        "campaign_id": campaign_id,
        "wetloop_version": wetloop_version(),
        "exported_at": datetime.now(UTC).isoformat(),
        "json_columns": json.dumps(sorted(as_json)),
        "spec": json.dumps(spec.model_dump(mode="json"), sort_keys=True),
        "schema": json.dumps(transition_schema(), sort_keys=True),
    }


# -- writing ----------------------------------------------------------------------------------------
def write_transitions(records: Sequence[TransitionRecord], spec: CampaignSpec, campaign_id: str, out_dir: Path, fmt: str) -> Path:
    """Write the records in `fmt` (one of FORMATS) to `out_dir/FORMATS[fmt]`; returns the path."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {sorted(FORMATS)}")
    _require(fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FORMATS[fmt]
    if fmt == "jsonl":
        path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    elif fmt == "parquet":
        _write_parquet(records, spec, campaign_id, path)
    else:
        _write_h5ad(records, spec, campaign_id, path)
    return path


def write_quarantine(records: Sequence[QuarantineRecord], out_dir: Path) -> Path:
    """Quarantined results, apart from the transitions, as JSON Lines (their raw payloads are any JSON)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / QUARANTINE_FILE
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return path


def _write_parquet(records: Sequence[TransitionRecord], spec: CampaignSpec, campaign_id: str, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, columns, as_json = _rows(records)
    table = pa.table({c: pa.array([r.get(c) for r in rows]) for c in columns})
    meta = {f"wetloop.{k}".encode(): v.encode() for k, v in _meta(spec, campaign_id, as_json).items()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def _readout_names(records: Sequence[TransitionRecord], spec: CampaignSpec) -> list[str]:
    from ..report._view import world_parts

    names = dict.fromkeys(r.name for r in world_parts(spec)[1])
    for record in records:
        names.update(dict.fromkeys(record.readouts))
    return list(names)


def _padded(values: list[Any]) -> Any:
    import numpy as np

    width = max((len(v) for v in values if v is not None), default=0)
    out = np.full((len(values), width), np.nan)
    for i, v in enumerate(values):
        if v is not None:
            out[i, : len(v)] = v
    return out


def _write_h5ad(records: Sequence[TransitionRecord], spec: CampaignSpec, campaign_id: str, path: Path) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd

    from ..report._view import world_parts

    rows, columns, as_json = _rows(records)
    names = _readout_names(records, spec)
    X = np.array([[r.get(f"readouts.{n}", np.nan) for n in names] for r in rows], dtype=float).reshape(len(rows), len(names))
    layers = {}
    objective = names.index(spec.objective.readout) if spec.objective.readout in names else None
    for layer, field in (
        ("predicted_mean", "mean"),
        ("predicted_std", "std"),
        ("predicted_lower", "lower"),
        ("predicted_upper", "upper"),
    ):
        m = np.full(X.shape, np.nan)
        if objective is not None:
            m[:, objective] = [np.nan if r.get(f"prediction.{field}") is None else r[f"prediction.{field}"] for r in rows]
        layers[layer] = m
    lists = [c for c in columns if any(isinstance(r.get(c), list) for r in rows)]
    obsm = {c: _padded([r.get(c) for r in rows]) for c in lists}
    scalar = [c for c in columns if c not in lists and not c.startswith("readouts.")]
    cells = {c: _obs_column([r.get(c) for r in rows]) for c in scalar}
    obs = pd.DataFrame({c: v for c, v in cells.items() if v is not None}, index=[r["experiment_key"] for r in rows])
    declared = {r.name: r for r in world_parts(spec)[1]}
    var = pd.DataFrame(
        {
            "unit": [declared[n].unit if n in declared else "" for n in names],
            "series": [(declared[n].series or "") if n in declared else "" for n in names],
            "stat": [declared[n].stat if n in declared else "" for n in names],
            "objective": [n == spec.objective.readout for n in names],
        },
        index=names,
    )
    adata = ad.AnnData(X=X, obs=obs, var=var, layers=layers, obsm=obsm)
    adata.uns["wetloop"] = {**_meta(spec, campaign_id, as_json), "list_columns": json.dumps(lists)}
    adata.write_h5ad(path)


def _obs_column(values: list[Any]) -> Any:
    """One obs column (None for a column with no value: it is left out): timestamps as ISO text, since
    anndata writes no datetimes; text as objects (anndata stores them as categories where they repeat)."""
    import numpy as np
    import pandas as pd

    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, datetime) for v in present):
        return pd.array([v.isoformat() if v is not None else None for v in values], dtype=object)
    if all(isinstance(v, bool) for v in present):
        return pd.array(values, dtype="boolean")
    if all(isinstance(v, str) for v in present):
        return pd.array(values, dtype=object)
    if all(isinstance(v, int) for v in present) and len(present) == len(values):
        return np.array(values, dtype=np.int64)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


# -- reading ----------------------------------------------------------------------------------------
def read_transitions(path: str | Path) -> list[TransitionRecord]:
    """The transition records of an export: a file written by `write_transitions` (by its suffix), or a
    folder holding one (JSON Lines first, then Parquet, then AnnData)."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in FORMATS.values() if (path / name).is_file()]
        if not found:
            raise ExportError(f"{path} holds no exported transitions ({', '.join(FORMATS.values())}); run `wetloop export` first")
        path = found[0]
    if not path.is_file():
        raise ExportError(f"{path} does not exist; pass an export folder or a transitions file")
    suffix = path.suffix.lstrip(".")
    if suffix not in FORMATS:
        raise ExportError(f"{path} is not an export file: expected a .jsonl, .parquet or .h5ad file")
    _require(suffix)
    try:
        if suffix == "jsonl":
            return [_checked(TransitionRecord.model_validate_json(line), path) for line in _lines(path)]
        if suffix == "parquet":
            return _read_parquet(path)
        return _read_h5ad(path)
    except ExportError:
        raise
    except Exception as exc:  # a damaged or foreign file: say which and why
        raise ExportError(f"{path} could not be read as wetloop transition records: {exc}") from exc


def read_quarantine(path: str | Path) -> list[QuarantineRecord]:
    """The quarantined results of an export (its folder or its quarantine.jsonl)."""
    path = Path(path)
    path = path / QUARANTINE_FILE if path.is_dir() else path
    return [QuarantineRecord.model_validate_json(line) for line in _lines(path)]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _checked(record: TransitionRecord, path: Path) -> TransitionRecord:
    _check_version(record.schema_version, path)
    return record


def _check_version(version: str, path: Path) -> None:
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ExportError(
            f"{path} holds transition records of schema version {version}; this wetloop reads {SCHEMA_VERSION.split('.')[0]}.x "
            "(export the campaign again with this version)"
        )


def _read_parquet(path: Path) -> list[TransitionRecord]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "wetloop.schema_version" not in meta:
        raise ExportError(f"{path} is a Parquet file, but not a wetloop export (no wetloop.schema_version in its metadata)")
    _check_version(meta["wetloop.schema_version"], path)
    as_json = json.loads(meta["wetloop.json_columns"])
    return [unflatten(row, as_json) for row in table.to_pylist()]


def _cell(value: Any) -> Any:
    """An obs cell as a plain Python value (None for a missing one)."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    return value


def _read_h5ad(path: Path) -> list[TransitionRecord]:
    import anndata as ad
    import numpy as np

    adata = ad.read_h5ad(path)
    meta = adata.uns.get("wetloop")
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise ExportError(f"{path} is an AnnData file, but not a wetloop export (no uns['wetloop'])")
    _check_version(str(meta["schema_version"]), path)
    as_json, lists = json.loads(meta["json_columns"]), json.loads(meta["list_columns"])
    obs = adata.obs.astype(object)
    X = np.asarray(adata.X)
    records = []
    for i in range(adata.n_obs):
        row = {c: _cell(obs.iat[i, j]) for j, c in enumerate(obs.columns)}
        row.update({f"readouts.{n}": float(X[i, j]) for j, n in enumerate(adata.var_names) if np.isfinite(X[i, j])})
        for c in lists:
            values = adata.obsm[c][i]
            row[c] = [float(v) for v in values if np.isfinite(v)] if np.isfinite(values).any() else None
        records.append(unflatten(row, as_json))
    return records
