"""`ScreenLab`: a genome-wide CRISPR screen played back as a lab.

An experiment knocks out one gene (`Intervention(values={"gene": "STAT1"})`); the lab reveals that
gene's measured score and whether it is one of the screen's hits (readouts "score" and "hit"), and
nothing else. Unknown genes are rejected before anything "runs". world_options:

- `screen`: the screen's name (e.g. IFNG), required;
- `data_dir`: a directory holding `ground_truth_<screen>.csv` and `task_prompts/<screen>.json` (read as
  given), or null for the registered screens (WETLOOP_DATA_DIR, else a verified download);
- `shuffle_feedback` (false): the negative control. Results are answered at the first poll after they
  were submitted, together with every other unanswered result; with the control on, the scores
  (and hit flags) of those experiments are permuted among them, so over a campaign the lab returns
  a permutation of the true scores of the genes tested so far, decoupled from which gene was tested.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wetloop.campaign import CampaignSpec, DataFileError, Experiment, Observation, Ticket
from wetloop.lab_adapters import Lab
from wetloop.lab_adapters.errors import ExperimentRejected, UnknownTicket, WorldOptionError

from ._hgnc import Screen, load_screen

__all__ = ["ScreenLab", "screen_of"]


def screen_of(spec: CampaignSpec) -> Screen:
    """The screen a spec's world_options name; `WorldOptionError` says what is missing or wrong."""
    options = spec.world_options
    name = options.get("screen")
    if not isinstance(name, str) or not name:
        raise WorldOptionError("screen", name, hint="name the screen, e.g. screen: IFNG (ground_truth_IFNG.csv)")
    try:
        return load_screen(name, options.get("data_dir"))
    except DataFileError as exc:
        raise WorldOptionError("screen", name, hint=str(exc)) from None


class ScreenLab(Lab):
    """Plays a screen back gene by gene; see the module docstring. `runs[key]` counts reveals per key."""

    def __init__(self, spec: CampaignSpec, *, screen: Screen | None = None, name: str = "crispr_screen", **_: Any) -> None:
        super().__init__(spec, name)
        self.screen = screen if screen is not None else screen_of(spec)
        self.shuffle = bool(spec.world_options.get("shuffle_feedback", False))
        self._index = self.screen.index()
        self._variable = spec.interventions[0].name
        self._rng = np.random.default_rng([spec.seed, 7])
        self._pending: dict[str, int] = {}  # experiment key -> gene index, not yet answered
        self._results: dict[str, Observation] = {}
        self.runs: dict[str, int] = {}

    def _start(self, experiment: Experiment) -> Ticket:
        gene = experiment.intervention.values.get(self._variable)
        if not isinstance(gene, str) or gene not in self._index:
            raise ExperimentRejected([f"{self._variable} = {gene!r} is not a gene of screen {self.screen.name!r}"], experiment)
        key = experiment.key
        self.runs[key] = self.runs.get(key, 0) + 1
        if key not in self._results:
            self._pending[key] = self._index[gene]
        return Ticket(experiment_key=key, lab=self.name, lab_ref=f"{self.name}:{self.screen.name}:{gene}")

    def _poll(self, ticket: Ticket) -> Observation | None:
        key = ticket.experiment_key
        if key not in self._pending and key not in self._results:
            self._readmit(ticket)
        if key in self._pending:
            self._answer_pending()
        if key not in self._results:
            raise UnknownTicket(ticket)
        return self._results[key]

    def _readmit(self, ticket: Ticket) -> None:
        """A ticket this lab issued before a restart (it keeps nothing on disk): playback is a pure
        function of the gene, so the gene named in the ticket is answered now (under the shuffle
        control, permuted among whatever else is pending). A ticket of another screen stays unknown."""
        prefix = f"{self.name}:{self.screen.name}:"
        gene = ticket.lab_ref[len(prefix) :] if ticket.lab_ref.startswith(prefix) else None
        if gene in self._index:
            self._pending[ticket.experiment_key] = self._index[gene]

    def _cancel(self, ticket: Ticket) -> None:
        if ticket.experiment_key not in self._pending and ticket.experiment_key not in self._results:
            raise UnknownTicket(ticket)
        self._pending.pop(ticket.experiment_key, None)

    def _answer_pending(self) -> None:
        """Answer every pending experiment at once (permuted among them under the shuffle control)."""
        keys = list(self._pending)
        truth = np.array([self._pending[k] for k in keys])
        shown = self._rng.permutation(truth) if self.shuffle else truth
        for key, i in zip(keys, shown.tolist()):
            gene = self.screen.genes[i]
            readouts = {"score": float(self.screen.scores[i]), "hit": float(gene in self.screen.hits)}
            self._results[key] = Observation(experiment_key=key, status="ok", readouts=readouts, lab=self.name)
        self._pending.clear()
