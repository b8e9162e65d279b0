"""A learned virtual cell: the network's dynamics fitted to each cell's time course, then run under any cocktail.

Every experiment returns each cell's time course (`obsm["time_course"]` of its AnnData: cells x times x
genes), so even a few experiments hold tens of thousands of observed transitions of the 11-gene state.
`CellDynamicsModel` learns the vector field dx/dt = f(x) of that state from them (a small MLP, Euler
substeps between the recorded times, trained on the next recorded state) and predicts a cocktail the way
the lab runs it: start cells (drawn from the start states seen so far) are stepped with the cocktail's
genes held at their clamp level during the treatment window and free afterwards; each cell's fate is read
off its marker genes at the end, as the lab reads it. What the model is told is the protocol (which genes
are held, at what level, during which steps) and the fate rule; the network's equations it learns.

Ensemble: `members` fields, each fitted on a bootstrap resample of the experiments from its own
initialisation. Every cocktail of the spec's space is predicted by every member at fit time (fate shares
of `cells` simulated cells), so the planner ranks the whole space; each gene's mean trajectory is rolled
out on demand (`predict_band`, `trajectories`). To the planner it is a BoTorch `EnsembleModel` over
cocktail indices: X (..., q, 1) -> (..., members, q, readouts).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from botorch.models.ensemble import EnsembleModel
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from torch import Tensor

from wetloop.campaign import Band, CampaignSpec, Intervention, Observation, SpecError, StrictSettings
from wetloop.worldmodel import torch_threads
from wetloop.worldmodel.errors import ModelFileError

from ._experiment import MODEL, clamp_arrays, fate_shares, recorded_steps
from ._network import load_network
from ._options import FATES, MARKERS, CellOptions
from ._oracle import all_cocktails

__all__ = ["CellDynamicsModel", "CellModelConfig", "CellFitReport", "READOUTS", "band_gene"]

READOUTS = ("target_fraction", *(f"fraction_{f}" for f in FATES))
"""The readouts the model predicts, in the order of its outputs."""


class CellModelConfig(StrictSettings):
    """Settings of `CellDynamicsModel` (env prefix `WETLOOP_CELLMODEL_`); explicit arguments beat the environment.

    - `members` (4): fields in the ensemble, each on a bootstrap resample of the experiments.
    - `hidden` (32): units of the field's two hidden layers; `iterations` (1000) Adam steps of `batch`
      (1024) transitions at learning rate `lr` (3e-3).
    - `substep` (10): model steps per Euler substep of the learned field (10: one substep per recorded
      interval of the lab's default time course; 2 and 5 predicted no better, at 2-5x the time).
    - `cells` (32): simulated cells per cocktail when the whole space is predicted (a share is then
      resolved to 1/32); `start_cells` (400): start states kept to draw them from.
    - `threads` (1): torch threads while fitting and predicting (small models run fastest on one).
    """

    model_config = SettingsConfigDict(env_prefix="WETLOOP_CELLMODEL_", extra="forbid")

    members: int = Field(default=4, ge=2)
    hidden: int = Field(default=32, ge=4)
    iterations: int = Field(default=1000, ge=1)
    batch: int = Field(default=1024, ge=16)
    lr: float = Field(default=3e-3, gt=0)
    substep: int = Field(default=10, ge=1)
    cells: int = Field(default=32, ge=4)
    start_cells: int = Field(default=400, ge=10)
    threads: int | None = Field(default=1, ge=1)


class CellFitReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_experiments: int
    n_transitions: int
    skipped: int  # ok results without a per-cell time course (no AnnData file to read)
    final_loss: float  # mean squared error of the next recorded state, last step, mean over members
    seconds: float
    version: str

    def summary(self) -> str:
        skipped = f", {self.skipped} result(s) without a time course skipped" if self.skipped else ""
        return (
            f"cell dynamics ensemble refit on {self.n_experiments} experiment(s) ({self.n_transitions} cell transitions"
            f"{skipped}) in {self.seconds:.1f} s; next-state MSE {self.final_loss:.2e}; version {self.version}"
        )


def band_gene(options: CellOptions) -> str:
    """The series a band shows: the target fate's most specific marker gene (the last one it needs on)."""
    return MARKERS[options.target][0][-1]


class _Field(torch.nn.Module):
    """M vector fields at once: x (M, n, G) -> dx per model step (M, n, G)."""

    def __init__(self, members: int, genes: int, hidden: int, generator: torch.Generator) -> None:
        super().__init__()

        def weight(fan_in: int, fan_out: int) -> torch.nn.Parameter:
            bound = 1.0 / np.sqrt(fan_in)
            return torch.nn.Parameter((torch.rand(members, fan_in, fan_out, generator=generator) * 2 - 1) * bound)

        self.w1, self.w2, self.w3 = weight(genes, hidden), weight(hidden, hidden), weight(hidden, genes)
        self.b1 = torch.nn.Parameter(torch.zeros(members, 1, hidden))
        self.b2 = torch.nn.Parameter(torch.zeros(members, 1, hidden))
        self.b3 = torch.nn.Parameter(torch.zeros(members, 1, genes))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(torch.baddbmm(self.b1, x, self.w1))
        h = torch.tanh(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3) * 0.01  # per model step: states move a few % per step


class _Data:
    """Transitions between consecutive recorded times of every cell of every usable experiment."""

    def __init__(self) -> None:
        self.x0: list[np.ndarray] = []  # (k, G)
        self.x1: list[np.ndarray] = []
        self.t0: list[np.ndarray] = []  # step of x0
        self.dt: list[np.ndarray] = []  # steps to x1
        self.exp: list[np.ndarray] = []  # experiment index of each transition
        self.clamp: list[np.ndarray] = []  # (G,) bool per experiment
        self.level: list[np.ndarray] = []  # (G,) per experiment
        self.starts: list[np.ndarray] = []  # (cells, G) per experiment

    def add(self, course: np.ndarray, steps: np.ndarray, clamp: np.ndarray, level: np.ndarray) -> None:
        e = len(self.clamp)
        cells, times, genes = course.shape
        self.x0.append(course[:, :-1].reshape(-1, genes))
        self.x1.append(course[:, 1:].reshape(-1, genes))
        self.t0.append(np.tile(steps[:-1], cells))
        self.dt.append(np.tile(np.diff(steps), cells))
        self.exp.append(np.full(cells * (times - 1), e))
        self.clamp.append(clamp)
        self.level.append(level)
        self.starts.append(course[:, 0])

    def tensors(self) -> dict[str, Tensor]:
        return {
            "x0": torch.tensor(np.concatenate(self.x0), dtype=torch.float32),
            "x1": torch.tensor(np.concatenate(self.x1), dtype=torch.float32),
            "t0": torch.tensor(np.concatenate(self.t0), dtype=torch.float32),
            "dt": torch.tensor(np.concatenate(self.dt), dtype=torch.float32),
            "exp": torch.tensor(np.concatenate(self.exp)),
            "clamp": torch.tensor(np.stack(self.clamp)),
            "level": torch.tensor(np.stack(self.level), dtype=torch.float32),
        }


class _EnsembleOverIndices(EnsembleModel):
    """Members' predicted readouts per cocktail, served by index: table (M, N, D); X (..., q, 1) -> (..., M, q, D)."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = table
        self.members, self.particles = table.shape[0], 1
        self._num_outputs = table.shape[-1]

    def forward(self, X: Tensor) -> Tensor:
        out = self.table[:, X[..., 0].long()]  # (M, ..., q, D)
        return out.movedim(0, -3).to(torch.float64)


class _Outcome:
    """A sample's columns are the `READOUTS`, in order (the trajectories are rolled out apart: `trajectories`)."""

    series: tuple[str, ...] = ()

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        return {name: samples[..., j] for j, name in enumerate(READOUTS)}


class CellDynamicsModel:
    """The learned dynamics ensemble of one cell-world campaign (see the module docstring)."""

    outcome = _Outcome()

    def __init__(self, spec: CampaignSpec, options: CellOptions, config: CellModelConfig | None = None) -> None:
        self.spec, self.options = spec, options
        self.config = config if config is not None else CellModelConfig()
        self.variable = spec.interventions[0].name
        self.space = all_cocktails(spec.interventions[0])
        self.index = {Intervention(values={self.variable: c}).key(): i for i, c in enumerate(self.space)}
        self.net = load_network(MODEL)
        self.field: _Field | None = None
        self.starts: Tensor | None = None  # (start_cells, G)
        self.table: Tensor | None = None  # (M, N, len(READOUTS))
        self.version = "unfitted"
        self.last_fit: CellFitReport | None = None

    # -- what the planner calls ----------------------------------------------------------------
    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Each cocktail's index in the spec's space, (n, 1) float64 (a cocktail outside it is refused)."""
        rows = []
        for x in interventions:
            i = self.index.get(Intervention(values={self.variable: x.values.get(self.variable) or {}}).key())
            if i is None:
                raise SpecError(f"cocktail {x.values.get(self.variable)!r} is not in the spec's space of {len(self.space)}")
            rows.append([float(i)])
        return torch.tensor(rows, dtype=torch.float64).reshape(-1, 1)

    def botorch_model(self) -> EnsembleModel:
        if self.table is None:
            raise RuntimeError("fit the cell dynamics model before ranking with it")
        return _EnsembleOverIndices(self.table)

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band | None:
        """The band of the target fate's marker gene (`band_gene`): median and central interval over members."""
        gene = band_gene(self.options)
        times, means = self.trajectories([self.cocktail_of(intervention)])
        g = self.net.index(gene)
        per_member = means[:, 0, :, g]  # (M, T)
        lo, mid, hi = np.quantile(per_member, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
        return Band(
            series=gene,
            level=level,
            times_min=tuple(float(t) for t in times),
            lower=tuple(float(v) for v in lo),
            median=tuple(float(v) for v in mid),
            upper=tuple(float(v) for v in hi),
        )

    def cocktail_of(self, intervention: Intervention) -> dict[str, str]:
        value = intervention.values.get(self.variable)
        return dict(value) if isinstance(value, dict) else {}

    # -- predictions -----------------------------------------------------------------------------
    def record_steps(self) -> np.ndarray:
        """The steps at which the lab records the time course."""
        return np.asarray(recorded_steps(self.options))

    def fractions(self, cocktails: Sequence[dict[str, str]], cells: int | None = None, seed: int = 0) -> np.ndarray:
        """Each member's fate shares (M, n, len(FATES)) of `cells` simulated cells per cocktail."""
        final, _ = self._rollout(cocktails, cells or self.config.cells, seed, keep_course=False)
        m, n, c, g = final.shape
        return fate_shares(final.reshape(-1, g), m * n, c, self.options.threshold).reshape(m, n, len(FATES))

    def trajectories(
        self, cocktails: Sequence[dict[str, str]], cells: int | None = None, seed: int = 0, steps: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(times in the lab's units, each member's mean trajectory (M, n, T, G)) at the lab's recorded steps,
        or at those of them given as `steps`."""
        _, course = self._rollout(cocktails, cells or self.config.cells, seed, keep_course=True)
        assert course is not None
        recorded = self.record_steps()
        keep = np.arange(len(recorded)) if steps is None else np.searchsorted(recorded, np.asarray(steps))
        if steps is not None and (keep.max(initial=0) >= len(recorded) or not np.array_equal(recorded[keep], steps)):
            raise ValueError(f"steps {list(steps)} must be among the recorded steps {recorded.tolist()}")
        return recorded[keep] * self.net.inv_time_step, course[:, :, keep]

    def _rollout(
        self, cocktails: Sequence[dict[str, str]], cells: int, seed: int, keep_course: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.field is None or self.starts is None:
            raise RuntimeError("fit the cell dynamics model before predicting with it")
        gen = torch.Generator().manual_seed(seed)
        n, M, G = len(cocktails), self.field.w1.shape[0], self.net.dim
        x = self.starts[torch.randint(len(self.starts), (n * cells,), generator=gen)].expand(M, -1, -1).clone()
        arrays = [clamp_arrays(self.net, self.options, c, cells) for c in cocktails]
        clamp = torch.tensor(np.concatenate([a for a, _ in arrays])) if arrays else torch.zeros(0, G, dtype=torch.bool)
        level = torch.tensor(np.concatenate([b for _, b in arrays]), dtype=torch.float32) if arrays else torch.zeros(0, G)
        steps = self.record_steps()
        course = np.empty((M, n, len(steps), G), dtype=np.float32) if keep_course else None
        lo, hi = self.options.window
        with torch.no_grad(), torch_threads(self.config.threads):
            x = torch.where(clamp & (lo <= 0 < hi), level, x)  # the lab clamps a step's state while lo <= step < hi
            for j in range(len(steps)):
                if course is not None:
                    course[:, :, j] = x.reshape(M, n, cells, G).mean(2).numpy()
                if j + 1 < len(steps):
                    t0, dt = torch.tensor(float(steps[j])), torch.tensor(float(steps[j + 1] - steps[j]))
                    x = self._advance(x, t0, dt, clamp, level)
        return x.reshape(M, n, cells, G).numpy(), course

    # -- fitting ----------------------------------------------------------------------------------
    def _data(self, history: Sequence[tuple[Intervention, Observation]]) -> tuple[_Data, int]:
        import anndata as ad

        data, skipped = _Data(), 0
        for x, obs in history:
            path = obs.raw.get("anndata") if obs.status == "ok" else None
            if not path or not Path(path).is_file():
                skipped += obs.status == "ok"
                continue
            adata = ad.read_h5ad(path)
            course = np.asarray(adata.obsm["time_course"], dtype=np.float32)
            steps = np.rint(np.asarray(adata.uns["times"], dtype=float) / self.net.inv_time_step).astype(int)
            clamp, level = clamp_arrays(self.net, self.options, self.cocktail_of(x), 1)
            data.add(course, steps, clamp[0], level[0].astype(np.float32))
        return data, skipped

    def fit(self, history: Sequence[tuple[Intervention, Observation]]) -> CellFitReport:
        """Fit every member from scratch (seeded by the spec's seed and the data) and predict the whole space."""
        t0 = time.perf_counter()
        data, skipped = self._data(history)
        if not data.clamp:
            raise SpecError(
                f"world model 'series' of world 'cell' learns from each cell's time course, which the local lab writes as "
                f"AnnData (an observation's raw['anndata']); none of the {skipped} result(s) has one. Run the campaign "
                "with the local lab, or set world_model: gp (it learns from the fate fractions alone)."
            )
        cocktails = [self.cocktail_of(x) for x, o in history if o.status == "ok"]
        return self._fit(data, skipped, cocktails, t0, predict_space=True)

    def fit_courses(
        self,
        cocktails: Sequence[dict[str, str]],
        courses: Sequence[np.ndarray],
        steps: Sequence[int],
        predict_space: bool = False,
    ) -> CellFitReport:
        """Fit on populations given as arrays: each cocktail's cells' time courses (cells, times, genes) at
        the model `steps` (for benches that simulate populations without a lab). Predicting the whole space
        (what ranking needs) is left out unless asked."""
        t0, data = time.perf_counter(), _Data()
        for c, course in zip(cocktails, courses, strict=True):
            clamp, level = clamp_arrays(self.net, self.options, c, 1)
            data.add(np.asarray(course, dtype=np.float32), np.asarray(steps), clamp[0], level[0].astype(np.float32))
        return self._fit(data, 0, list(cocktails), t0, predict_space)

    def _fit(self, data: _Data, skipped: int, cocktails: list[dict[str, str]], t0: float, predict_space: bool) -> CellFitReport:
        key = hashlib.sha256(
            json.dumps(
                [sorted(c.items()) for c in cocktails] + [self.spec.seed, self.config.model_dump(mode="json")], default=str
            ).encode()
        ).hexdigest()
        seed = int(key[:8], 16)
        cfg, T = self.config, data.tensors()
        gen = torch.Generator().manual_seed(seed)
        n_exp, M = len(data.clamp), cfg.members
        with torch_threads(cfg.threads):
            field = _Field(M, self.net.dim, cfg.hidden, gen)
            opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
            # member m trains on a bootstrap resample of the experiments (member 0: every experiment once): a
            # batch row is a uniform pick among the member's resampled experiments' transitions
            per_exp = [torch.nonzero(T["exp"] == e)[:, 0] for e in range(n_exp)]
            draws = [torch.arange(n_exp)] + [torch.randint(n_exp, (n_exp,), generator=gen) for _ in range(M - 1)]
            pools = [torch.cat([per_exp[int(e)] for e in d]) for d in draws]
            self.field, loss_value = field, float("nan")
            for _ in range(cfg.iterations):
                rows = torch.stack([p[torch.randint(len(p), (cfg.batch,), generator=gen)] for p in pools])  # (M, B)
                e = T["exp"][rows]
                clamp, level = T["clamp"][e], T["level"][e]
                pred = self._advance(T["x0"][rows], T["t0"][rows], T["dt"][rows], clamp, level)
                loss = ((pred - T["x1"][rows]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_value = float(loss.detach())
            self.starts = torch.tensor(np.concatenate(data.starts), dtype=torch.float32)
            if len(self.starts) > cfg.start_cells:
                self.starts = self.starts[torch.randperm(len(self.starts), generator=gen)[: cfg.start_cells]]
        self.field.requires_grad_(False)
        self.table = self._predict_space(seed) if predict_space else None
        self.version = key[:12]
        self.last_fit = report = CellFitReport(
            n_experiments=n_exp,
            n_transitions=int(len(T["x0"])),
            skipped=skipped,
            final_loss=loss_value,
            seconds=round(time.perf_counter() - t0, 2),
            version=self.version,
        )
        return report

    def _advance(self, x: Tensor, t0: Tensor, dt: Tensor, clamp: Tensor, level: Tensor) -> Tensor:
        """Euler substeps of the field from step t0 over dt steps, clamped genes held while the window is open
        (the lab's rule: lo <= step < hi). x (M, B, G); t0, dt (M, B), one transition each (training), or
        0-d (a rollout); clamp, level broadcast against x."""
        assert self.field is not None
        lo, hi = self.options.window
        n_sub = max(1, int(np.ceil(float(dt.max()) / self.config.substep)))
        h = (dt / n_sub).unsqueeze(-1)
        for s in range(n_sub):
            x = x + self.field(x) * h
            now = t0 + (s + 1) * dt / n_sub
            x = torch.where(clamp & ((now >= lo) & (now < hi)).unsqueeze(-1), level, x)
        return x

    def _predict_space(self, seed: int) -> Tensor:
        shares = self.fractions(self.space, seed=seed)  # (M, N, F)
        target = shares[..., FATES.index(self.options.target)]
        return torch.tensor(np.concatenate([target[..., None], shares], axis=-1), dtype=torch.float32)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        if self.field is None or self.table is None or self.last_fit is None:
            raise RuntimeError("fit the cell dynamics model before saving it")
        buffer = io.BytesIO()
        torch.save(
            {
                "field": self.field.state_dict(),
                "starts": self.starts,
                "table": self.table,
                "config": self.config.model_dump(mode="json"),
                "fit": self.last_fit.model_dump(mode="json"),
            },
            buffer,
        )
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, spec: CampaignSpec, options: CellOptions) -> CellDynamicsModel:
        try:
            state = torch.load(io.BytesIO(Path(path).read_bytes()), weights_only=True)
            config = CellModelConfig.model_validate(state["config"])
            model = cls(spec, options, config)
            model.field = _Field(config.members, model.net.dim, config.hidden, torch.Generator())
            model.field.load_state_dict(state["field"])
            model.field.requires_grad_(False)
            model.starts, model.table = state["starts"], state["table"]
            model.last_fit = CellFitReport.model_validate(state["fit"])
        except (OSError, KeyError, RuntimeError, ValueError) as e:
            raise ModelFileError(f"cannot load the cell dynamics model {path}: {e}") from e
        if model.table.shape[1] != len(model.space):
            raise ModelFileError(
                f"the cell dynamics model {path} predicts {model.table.shape[1]} cocktails; this spec's space has {len(model.space)}"
            )
        model.version = model.last_fit.version
        return model
