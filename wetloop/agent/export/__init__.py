"""`wetloop export`: a campaign's experiments as transition records (JSON Lines, Parquet, AnnData), its
quarantined results apart, and the records' JSON Schema; `read_transitions` reads an export back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wetloop.campaign import CampaignStore
from wetloop.campaign._transitions import transition_schema

from ._build import campaign_records, quarantine_records
from ._formats import (
    FORMATS,
    INSTALL_HINT,
    ExportError,
    flatten,
    missing_packages,
    read_quarantine,
    read_transitions,
    unflatten,
    write_quarantine,
    write_transitions,
)

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "SCHEMA_FILE",
    "ExportError",
    "ExportPaths",
    "campaign_records",
    "export_campaign",
    "flatten",
    "missing_packages",
    "quarantine_records",
    "read_quarantine",
    "read_transitions",
    "transition_schema",
    "unflatten",
]

SCHEMA_FILE = "transition-schema.json"


@dataclass(frozen=True)
class ExportPaths:
    transitions: dict[str, Path]  # format -> file
    quarantine: Path
    schema: Path
    n_transitions: int
    n_quarantined: int


def export_campaign(store: CampaignStore, campaign_id: str, out_dir: Path, formats: Sequence[str]) -> ExportPaths:
    """Write the campaign's transitions in each of `formats`, its quarantined results (quarantine.jsonl)
    and the schema (transition-schema.json) to `out_dir`. Every format is checked before anything is written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown export format(s) {unknown}; choose from {sorted(FORMATS)}")
    if missing := missing_packages(formats):
        raise ExportError(
            f"exporting {', '.join(formats)} needs {', '.join(missing)}, not installed here; install: {INSTALL_HINT}"
        )
    spec, records, quarantined = (
        store.spec(campaign_id),
        campaign_records(store, campaign_id),
        quarantine_records(store, campaign_id),
    )
    files = {f: write_transitions(records, spec, campaign_id, out_dir, f) for f in dict.fromkeys(formats)}
    schema = out_dir / SCHEMA_FILE
    schema.write_text(json.dumps(transition_schema(), indent=2) + "\n")
    return ExportPaths(files, write_quarantine(quarantined, out_dir), schema, len(records), len(quarantined))
