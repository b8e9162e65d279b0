"""Exported transitions of other campaigns as prior data (`wetloop run --prior EXPORT`): the campaign's
world model is fitted on them before its first result, and refitted on them together with the
campaign's own results each round (the records are pooled, not down-weighted)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from wetloop.campaign import CampaignSpec, Intervention, Observation
from wetloop.campaign._transitions import history_of

from .export import ExportError, read_transitions

__all__ = ["check_prior", "prior_history"]


def check_prior(spec: CampaignSpec, paths: Sequence[str]) -> None:
    """Raise ExportError, before a campaign is created, when an export cannot serve as its prior data:
    unreadable, of another world, with other intervention variables, or without a usable result."""
    for path in paths:
        records = read_transitions(path)
        other = sorted({r.world for r in records} - {spec.world})
        if other:
            raise ExportError(f"prior data {path} holds records of world(s) {other}; this campaign's world is {spec.world!r}")
        names = set(spec.variable_names)
        strange = sorted({n for r in records for n in r.intervention} ^ names)
        if strange:
            raise ExportError(
                f"prior data {path}: its interventions' variables differ from the spec's {sorted(names)} in {strange}; "
                "use exports of campaigns over the same intervention variables"
            )
        if not history_of(records):
            raise ExportError(f"prior data {path} holds no 'ok' result to learn from")


@lru_cache(maxsize=8)
def _read(paths: tuple[str, ...]) -> tuple[tuple[Intervention, Observation], ...]:
    return tuple(item for path in paths for item in history_of(read_transitions(Path(path))))


def prior_history(paths: Sequence[str]) -> list[tuple[Intervention, Observation]]:
    """The `ok` results of the exports at `paths`, as (intervention, observation) pairs (read once)."""
    return list(_read(tuple(paths))) if paths else []
