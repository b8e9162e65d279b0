"""What a simulated-day lab keeps on disk, and how it writes it so a kill -9 never leaves half a file.

    <cache_dir>/<world fingerprint>/
        <day key>.json          a finished day (trajectory + raw), written once, atomically
        journal/<exp key>.json  an accepted submission: the experiment and the spec it ran under
        runs/<exp key>          one line per simulation that finished for that experiment
        locks/<day key>.lock    held (flock) while a process simulates that day
        records/                the Ray executor's ledger, a DayStore of its own keyed by experiment
                                (`<exp key>.json`, `runs/<exp key>`): one result per experiment across nodes

The lock makes "simulate once" hold across processes: whoever holds it re-reads the cache before
simulating, so a restarted run waits for an orphaned one instead of running the day again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wetloop.campaign import CampaignSpec, Experiment

__all__ = ["DayStore", "write_atomic"]


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class DayStore:
    """The on-disk cache, journal and run markers of one world (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- finished days --------------------------------------------------------------------------
    def result_path(self, day_key: str) -> Path:
        return self.root / f"{day_key}.json"

    def read_result(self, day_key: str) -> dict[str, Any] | None:
        """The stored day, or None when it was never finished (or its file is unreadable)."""
        try:
            return json.loads(self.result_path(day_key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_result(self, day_key: str, payload: dict[str, Any]) -> None:
        write_atomic(self.result_path(day_key), json.dumps(payload))

    # -- the journal of accepted submissions ----------------------------------------------------
    def _journal_path(self, experiment_key: str) -> Path:
        return self.root / "journal" / f"{experiment_key}.json"

    def write_journal(self, experiment: Experiment, spec: CampaignSpec) -> None:
        entry = {"experiment": experiment.model_dump(mode="json"), "spec": spec.model_dump(mode="json")}
        write_atomic(self._journal_path(experiment.key), json.dumps(entry))

    def read_journal(self, experiment_key: str) -> tuple[Experiment, CampaignSpec] | None:
        try:
            entry = json.loads(self._journal_path(experiment_key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return Experiment.model_validate(entry["experiment"]), CampaignSpec.model_validate(entry["spec"])

    def drop_journal(self, experiment_key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._journal_path(experiment_key).unlink()

    def journal_keys(self) -> set[str]:
        return {p.stem for p in (self.root / "journal").glob("*.json")}

    # -- completed-run markers ------------------------------------------------------------------
    def mark_run(self, experiment_key: str, day_key: str) -> None:
        """Count one finished simulation (one short O_APPEND write: whole lines even across processes)."""
        path = self.root / "runs" / experiment_key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(day_key + "\n")

    def completed_runs(self) -> dict[str, int]:
        """Finished simulations per experiment key, as counted by `mark_run`."""
        runs = self.root / "runs"
        return {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in runs.iterdir()} if runs.is_dir() else {}

    # -- one simulator per day at a time --------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, day_key: str) -> Iterator[None]:
        """Hold an exclusive lock on a day while simulating it; the OS drops it if the holder dies."""
        path = self.root / "locks" / f"{day_key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
