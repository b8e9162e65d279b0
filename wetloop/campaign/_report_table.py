"""`ReportTable`: a table a world adds to the campaign report (`World.report_tables`), as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ReportTable"]


@dataclass(frozen=True)
class ReportTable:
    """A titled table: `columns` name the cells of each row of `rows`; `note` says what it shows.

    The report shows the first rows and folds the rest away when a table is long."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        bad = [i for i, row in enumerate(self.rows) if len(row) != len(self.columns)]
        if bad:
            raise ValueError(f"report table {self.title!r}: row {bad[0]} has not {len(self.columns)} cells ({self.columns})")
