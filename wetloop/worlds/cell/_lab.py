"""`CellLab`: each experiment is one population run (`run_experiment`), in process, at submit.

It is the generic `FunctionLab` (a result per experiment key, seeded from the spec's seed and the key,
so a repeat under another key is another sample; results kept on disk under `cache_dir`), whose
function also writes the experiment's AnnData to `<cache_dir>/anndata/<experiment key>.h5ad` when it
has a `cache_dir`, for scanpy to read; the observation's `raw["anndata"]` gives the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wetloop.campaign import CampaignSpec, Experiment, Observation
from wetloop.lab_adapters import FunctionLab

from ._experiment import lab_result, run_experiment
from ._options import CellOptions

__all__ = ["CellLab", "CellRunner"]


class CellRunner:
    """`fn(values, seed)` for `FunctionLab`: one cocktail on a population, the lab's numbers back."""

    def __init__(self, options: CellOptions, variable: str, anndata_dir: Path | None = None) -> None:
        self.options, self.variable, self.anndata_dir = options, variable, anndata_dir
        self.written: Path | None = None  # the last run's AnnData file

    def __call__(self, values: dict[str, Any], seed: int) -> dict[str, Any]:
        cocktail = values.get(self.variable) or {}
        adata = run_experiment(self.options, dict(cocktail), seed)
        if self.anndata_dir is not None:
            self.anndata_dir.mkdir(parents=True, exist_ok=True)
            self.written = self.anndata_dir / f"seed-{seed}.h5ad"
            adata.write_h5ad(self.written)
        return lab_result(self.options, adata)


class CellLab(FunctionLab):
    def __init__(
        self, spec: CampaignSpec, options: CellOptions, *, cache_dir: Path | str | None = None, name: str = "cell"
    ) -> None:
        anndata_dir = Path(cache_dir) / "anndata" if cache_dir is not None else None
        self.runner = CellRunner(options, spec.interventions[0].name, anndata_dir)
        super().__init__(spec, self.runner, cache_dir=cache_dir, name=name)

    def _run(self, experiment: Experiment) -> Observation:
        """The function lab's run, with its AnnData file renamed after the experiment and named in `raw`."""
        self.runner.written = None
        obs = super()._run(experiment)
        written = self.runner.written
        if obs.status != "ok" or written is None:
            return obs
        path = written.with_name(f"{experiment.key}.h5ad")
        written.replace(path)
        return obs.model_copy(update={"raw": {**obs.raw, "anndata": str(path)}})
