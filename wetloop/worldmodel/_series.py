"""`SeriesWorldModel`: learns the declared series' dynamics of any world and rolls candidates forward.

A probabilistic deep ensemble (`GaussianEnsemble`, members vectorised, each on its own bootstrap of
whole experiments) learns one step on the shared time grid: state (every series, transformed and
standardised) + step inputs -> a Gaussian over the state change (`dynamics: mlp`), or the same net as
the vector field of a neural ODE over each interval (`dynamics: ode`, `_series_step`). After the
one-step fit, each member is fine-tuned on chained multi-step windows (`_series_train`) so that the
errors an open-loop rollout compounds are trained against. Candidates are rolled out open loop from
the training mean of the initial states and its spread (`_series_rollout`; by default each member's
mean path, with the learned noise added to the reported values, not compounded), and shown to
the planner as a BoTorch `EnsembleModel` whose samples (b, S, q, n_series * T) `outcome.readouts`
turns into every computed readout and safety event.

Scalar readouts the lab reports but no series computes (`stat: value`) are not modelled here: they
are listed in the fit report as `ignored_readouts`; a world that ranks on them should use the
scalar model (`world_model: ensemble`).

    model = SeriesWorldModel(spec, world.series(spec), world.readouts(spec), inputs=world.inputs)
    model.fit(history)
    values = model.botorch_model().posterior(model.encode(candidates)).values   # (S, n, n_series * T)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from torch import Tensor

from wetloop.campaign import (
    Band,
    CampaignSpec,
    Intervention,
    Observation,
    Readout,
    Series,
    StrictSettings,
)

from ._config import torch_threads
from ._ensemble import train_ensemble
from ._generic import (
    RobustEnsemble,
    check_key,
    decode_interventions,
    encode_interventions,
    read_payload,
    require_encodable,
    spec_key,
    weights_hash,
)
from ._readout_torch import SampleOutcome
from ._series_data import (
    InputsFn,
    StateTransform,
    elapsed_fraction,
    input_channels,
    on_grid,
)
from ._series_rollout import Dynamics, SeriesEnsembleModel
from ._series_step import DynamicsKind, require_ode, step
from ._series_train import train_rollouts
from .errors import NotFittedError, NoTrainingData, WorldModelError

__all__ = ["SeriesFitReport", "SeriesModelConfig", "SeriesWorldModel"]

_FORMAT = "wetloop.worldmodel.series/1"
History = Sequence[tuple[Intervention, Observation]]


class SeriesModelConfig(StrictSettings):
    """Size, training and rollouts of the series model (environment prefix `WETLOOP_SERIESMODEL_`)."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SERIESMODEL_", frozen=True, extra="forbid")

    members: int = Field(5, ge=2, description="ensemble members (each its own bootstrap of experiments and init)")
    hidden: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    epochs: int = Field(60, ge=1)
    min_steps: int = Field(1000, ge=0, description="at least this many gradient steps, for small data")
    batch_size: int = Field(128, ge=8)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    logvar_bound_weight: float = Field(0.01, ge=0)
    log_eps: float = Field(
        0.05,
        gt=0,
        description="eps of log(x + eps), as a fraction of the series' largest value (near-zero values are mostly measurement noise: a tiny eps turns that noise into huge log-space jumps)",
    )
    margin: float = Field(0.5, ge=0, description="rollouts stay within the training state range widened by this fraction")
    particles: int = Field(8, ge=1, description="particles per member; S = members * particles")
    dynamics: DynamicsKind = Field("mlp", description="mlp: one-step Gaussian MLPs; ode: neural-ODE members (extra `ode`)")
    rollout_noise: Literal["process", "observation"] = Field(
        "observation",
        description="observation: mean paths, the learned noise added to each reported value; process: added to the state each step",
    )
    horizon: int = Field(32, ge=1, description="longest chained window of the multi-step fine-tune (intervals)")
    rollout_steps: int = Field(300, ge=0, description="gradient steps of the multi-step fine-tune (0: one-step training only)")
    rollout_batch: int = Field(32, ge=1, description="windows per member per multi-step gradient step")
    ode_substeps: int = Field(2, ge=1, description="Runge-Kutta steps per grid interval (dynamics: ode)")
    seed: int = 0
    threads: int | None = Field(1, ge=1, description="torch intra-op threads while fitting and rolling out")


class SeriesFitReport(BaseModel):
    """What one `fit` did. `rmse_one_step` is the held-in error of the members' mean one-step prediction
    per series, physical units, from the observed state (a sanity check, not a test score); losses are
    the training objective (beta-NLL, standardised units) of the first and last epoch."""

    model_config = ConfigDict(frozen=True)

    n_experiments: int
    n_skipped: int
    n_transitions: int
    series: tuple[str, ...]
    log_series: tuple[str, ...]
    ignored_readouts: tuple[str, ...]
    steps: int
    first_loss: float
    final_loss: float
    rmse_one_step: dict[str, float]
    seconds: float
    version: str

    def summary(self) -> str:
        errors = ", ".join(f"{k} {v:.3g}" for k, v in self.rmse_one_step.items())
        ignored = (
            f"; readouts {list(self.ignored_readouts)} are not from a series and are not modelled"
            if self.ignored_readouts
            else ""
        )
        return (
            f"series ensemble refit on {self.n_experiments} experiment(s), {self.n_transitions} steps, in "
            f"{self.seconds:.1f} s (one-step RMSE: {errors}){ignored}; version {self.version}"
        )


class SeriesWorldModel:
    """Any world's declared series over time, as an ensemble of one-step dynamics models."""

    def __init__(
        self,
        spec: CampaignSpec,
        series: Sequence[Series] = (),
        readouts: Sequence[Readout] = (),
        inputs: InputsFn | None = None,
        config: SeriesModelConfig | None = None,
    ) -> None:
        self.spec, self.inputs = spec, inputs
        self.series = tuple(series) or tuple(spec.series)
        if not self.series:
            raise WorldModelError(
                f"spec {spec.name!r} declares no series; the series model needs at least one "
                "(declare them under series:, or use world_model: ensemble for scalar readouts)"
            )
        if inputs is None:
            require_encodable(spec, "series world model (with no world inputs, it holds the encoded intervention as input)")
        self.readout_defs = tuple(readouts) or tuple(spec.readouts)
        self.config = config if config is not None else SeriesModelConfig()
        if self.config.dynamics == "ode":
            require_ode()
        self.grid: np.ndarray | None = None
        self._dyn: Dynamics | None = None
        self._models: dict[int, SeriesEnsembleModel] = {}
        self.last_fit: SeriesFitReport | None = None

    @property
    def series_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.series)

    # ---- data ----------------------------------------------------------------------------
    def _usable(self, history: History) -> list[tuple[Intervention, Observation]]:
        return [
            (iv, obs)
            for iv, obs in history
            if obs.status == "ok" and obs.trajectory is not None and len(obs.trajectory.times_min) > 1
        ]

    def _arrays(self, pairs: list[tuple[Intervention, Observation]], grid: np.ndarray) -> tuple[np.ndarray, Tensor]:
        """Series on the grid (n, T, n_series) and step inputs (n, K, C) of the usable pairs."""
        values = np.stack([on_grid(obs, self.series, grid) for _, obs in pairs])
        return values, input_channels(self.spec, self.inputs, [iv for iv, _ in pairs], grid)

    # ---- fitting -------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._dyn is not None

    def fit(self, history: History) -> SeriesFitReport:
        """Refit from scratch (seeded) on every "ok" result with a trajectory of two or more times."""
        start, pairs = time.perf_counter(), self._usable(history)
        if not pairs:
            statuses = sorted({obs.status for _, obs in history})
            raise NoTrainingData(
                f"the series model needs at least one 'ok' result with a trajectory of 2+ times; got {len(history)} "
                f"result(s) with status(es) {statuses}. Run a first batch of experiments, then fit.",
                data=history,
            )
        grid = np.asarray(pairs[0][1].trajectory.times_min, dtype=float)  # type: ignore[union-attr]
        values, u = self._arrays(pairs, grid)
        transform = StateTransform.fit(self.series, values.reshape(-1, len(self.series)), self.config.log_eps)
        z = transform.to_state(torch.as_tensor(values))  # (n, T, s)
        with torch_threads(self.config.threads):
            ens, record = self._train(z, u)
            dyn = _dynamics(ens, transform, z, self.config)
            self._train_rollouts(dyn, z, u)
            rmse = self._one_step_rmse(dyn, z, u)
        self.grid, self._dyn, self._models = grid, dyn, {}
        self.last_fit = SeriesFitReport(
            n_experiments=len(pairs),
            n_skipped=len(history) - len(pairs),
            n_transitions=z.shape[0] * (z.shape[1] - 1),
            series=self.series_names,
            log_series=tuple(s.name for s, lg in zip(self.series, transform.log) if lg),
            ignored_readouts=tuple(r.name for r in self.readout_defs if r.series is None),
            steps=record.steps,
            first_loss=record.losses[0],
            final_loss=record.losses[-1],
            rmse_one_step=rmse,
            seconds=time.perf_counter() - start,
            version=self.version,
        )
        return self.last_fit

    def _train(self, z: Tensor, u: Tensor) -> tuple[RobustEnsemble, Any]:
        """A fresh ensemble on the transitions of z (n, T, s) under inputs u (n, K, C)."""
        cfg, (n, t, s) = self.config, z.shape
        x, y = _transitions(z, u)
        groups = torch.arange(n).repeat_interleave(t - 1)  # bootstrap whole experiments: members disagree off-data
        ens = RobustEnsemble(cfg.members, x.shape[1], s, cfg.hidden, cfg.layers, seed=cfg.seed)
        record = train_ensemble(
            ens,
            x.float(),
            y.float(),
            groups=groups,
            epochs=cfg.epochs,
            min_steps=cfg.min_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            bound_weight=cfg.logvar_bound_weight,
            seed=cfg.seed,
        )
        return ens, record

    def _train_rollouts(self, dyn: Dynamics, z: Tensor, u: Tensor) -> None:
        """The multi-step fine-tune (`_series_train`) of the fitted ensemble, in place."""
        cfg = self.config
        if cfg.rollout_steps == 0 or z.shape[1] < 3:
            return
        train_rollouts(
            dyn.ensemble,  # type: ignore[arg-type]  # _dynamics keeps the RobustEnsemble it was given
            z.float(),
            u.float(),
            kind=cfg.dynamics,
            horizon=cfg.horizon,
            steps=cfg.rollout_steps,
            batch=cfg.rollout_batch,
            lr=cfg.lr * 0.3,
            weight_decay=cfg.weight_decay,
            bounds=(dyn.z_low, dyn.z_high),
            substeps=cfg.ode_substeps,
            seed=cfg.seed,
        )

    @torch.no_grad()
    def _one_step_rmse(self, dyn: Dynamics, z: Tensor, u: Tensor) -> dict[str, float]:
        """Held-in one-step RMSE of the members' mean, per series, physical units."""
        ens, s = dyn.ensemble, z.shape[-1]
        x, y = _transitions(z, u)
        z_now = x[:, :s]
        delta, _ = step(ens, dyn.kind, z_now.float().expand(ens.members, -1, -1), x[:, s:].float().expand(ens.members, -1, -1))
        pred = dyn.transform.to_series(z_now + delta.mean(0).double())
        err = ((pred - dyn.transform.to_series(z_now + y)) ** 2).mean(0).sqrt()
        return dict(zip(self.series_names, err.tolist()))

    # ---- the planner's view --------------------------------------------------------------
    def _require(self, what: str) -> Dynamics:
        if self._dyn is None:
            raise NotFittedError(what, model=self)
        return self._dyn

    def _fitted_grid(self, what: str) -> np.ndarray:
        """The time grid, or NotFittedError (fit and load set it together with the dynamics)."""
        self._require(what)
        assert self.grid is not None
        return self.grid

    @property
    def times_min(self) -> tuple[float, ...]:
        """The model's time grid (T minutes), the first usable observation's."""
        return tuple(float(t) for t in self._fitted_grid("report its time grid"))

    @property
    def outcome(self) -> SampleOutcome:
        """Readouts of samples (..., n_series * T): every readout computed from a series, and the safety events."""
        return SampleOutcome(self.spec, self.readout_defs, series=self.series_names, times_min=self.times_min)

    @property
    def readout_names(self) -> tuple[str, ...]:
        return self.outcome.names

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> (n, d) float64: each variable's `Variable.encode` columns, in spec order."""
        if self.inputs is not None and any(v.kind == "categorical" and v.choices is None for v in self.spec.interventions):
            raise WorldModelError(
                "the series model cannot encode a categorical variable without choices for the "
                "planner; list its choices in the spec"
            )
        return encode_interventions(self.spec, interventions)

    def _step_inputs(self, X: Tensor) -> Tensor:
        """Encoded X (N, d) -> step inputs (N, K, C): through the world's inputs of the decoded interventions."""
        grid = self.grid
        assert grid is not None, "fit or load sets the grid before any BoTorch model is built"
        if self.inputs is None:  # the encoded intervention, held constant: no need to decode it
            u = X.double()[:, None, :].expand(-1, len(grid) - 1, -1)
            return torch.cat([u, elapsed_fraction(grid, len(X))], dim=-1)
        return input_channels(self.spec, self.inputs, decode_interventions(self.spec, X), grid)

    def botorch_model(self, seed: int | None = None) -> SeriesEnsembleModel:
        """The fitted model as a BoTorch `EnsembleModel` (seeded rollouts), cached per seed and fit."""
        dyn = self._require("build a BoTorch model")
        seed = self.config.seed if seed is None else seed
        if seed not in self._models:
            self._models[seed] = SeriesEnsembleModel(dyn, self._step_inputs, self.times_min, self.config.particles, seed)
        return self._models[seed]

    def sample(self, interventions: Sequence[Intervention]) -> Tensor:
        """Series samples. Shape (n, S, n_series * T) float64, physical units, series-major."""
        with torch_threads(self.config.threads), torch.no_grad():
            return self.botorch_model()(self.encode(interventions)).transpose(0, 1)

    def band_series(self) -> str:
        """The series `predict_band` shows: the objective's, else the first declared."""
        objective = next((r for r in self.readout_defs if r.name == self.spec.objective.readout), None)
        return objective.series if objective is not None and objective.series in self.series_names else self.series_names[0]

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band:
        """Median and central `level` interval of one series' samples at each grid time."""
        name = self.band_series()
        samples = self.outcome.series_values(self.sample([intervention])[0], name)  # (S, T)
        q = torch.tensor([(1 - level) / 2, 0.5, (1 + level) / 2], dtype=torch.float64)
        lower, median, upper = torch.quantile(samples.double(), q, dim=0).tolist()
        return Band(
            series=name, level=level, times_min=self.times_min, lower=tuple(lower), median=tuple(median), upper=tuple(upper)
        )

    # ---- identity and persistence --------------------------------------------------------
    @property
    def version(self) -> str:
        """12 hex digits over weights, state transform, initial state, grid and config."""
        dyn = self._require("report a version")
        tensors = [*dyn.ensemble.state_dict().items(), *_extras(dyn).items()]
        return weights_hash(self.config, tensors, (self.series_names, self.times_min))

    def _key(self) -> str:
        return spec_key(self.spec, series=[s.model_dump(mode="json") for s in self.series], inputs=self.inputs is not None)

    def save(self, path: str | Path) -> Path:
        """Write config, weights, state transform, initial state and grid with a format tag (torch.save)."""
        dyn = self._require("be saved")
        payload = {
            "format": _FORMAT,
            "key": self._key(),
            "config": self.config.model_dump(mode="json"),
            "state": dyn.ensemble.state_dict(),
            "extras": _extras(dyn),
            "grid": self.times_min,
            "fit": self.last_fit.model_dump(mode="json") if self.last_fit else None,
        }
        torch.save(payload, Path(path))
        return Path(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        spec: CampaignSpec,
        series: Sequence[Series] = (),
        readouts: Sequence[Readout] = (),
        inputs: InputsFn | None = None,
    ) -> SeriesWorldModel:
        """Restore a saved model; ModelFileError if it was saved for other variables, series or inputs."""
        payload = read_payload(path, _FORMAT, "series world model")
        model = cls(spec, series, readouts, inputs=inputs, config=SeriesModelConfig(**payload["config"]))
        check_key(payload, model._key(), path, "variables, series or input channels")
        cfg, state, ex = model.config, payload["state"], payload["extras"]
        d_in, hidden = state["hidden.0.weight"].shape[1:]
        ens = RobustEnsemble(cfg.members, d_in, len(model.series), hidden, cfg.layers, seed=cfg.seed)
        ens.load_state_dict(state)
        transform = StateTransform(ex["log"], ex["eps"], ex["lower"], ex["upper"])
        model._dyn = Dynamics(
            ens.eval(),
            transform,
            ex["z0_mean"],
            ex["z0_std"],
            ex["z_low"],
            ex["z_high"],
            cfg.dynamics,
            cfg.rollout_noise,
            cfg.ode_substeps,
        )
        model.grid = np.asarray(payload["grid"], dtype=float)
        model.last_fit = SeriesFitReport(**payload["fit"]) if payload["fit"] else None
        return model


def _transitions(z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Rows (state, inputs) -> state change. Shapes: z (n, T, s), u (n, K, C) -> x (n*K, s + C), y (n*K, s)."""
    x = torch.cat([z[:, :-1], u], dim=-1)
    return x.reshape(-1, x.shape[-1]), (z[:, 1:] - z[:, :-1]).reshape(-1, z.shape[-1])


def _dynamics(ens: RobustEnsemble, transform: StateTransform, z: Tensor, cfg: SeriesModelConfig) -> Dynamics:
    """Rollout constants from the training states z (n, T, s): initial mean/spread, widened state range."""
    z0 = z[:, 0]
    std0 = z0.std(0) if len(z0) > 1 else torch.zeros_like(z0[0])
    flat = z.reshape(-1, z.shape[-1])
    lo, hi = flat.amin(0), flat.amax(0)
    pad = cfg.margin * (hi - lo) + 1e-6
    return Dynamics(
        ens.eval(), transform, z0.mean(0), std0, lo - pad, hi + pad, cfg.dynamics, cfg.rollout_noise, cfg.ode_substeps
    )


def _extras(dyn: Dynamics) -> dict[str, Tensor]:
    return {**dyn.transform.as_dict(), "z0_mean": dyn.z0_mean, "z0_std": dyn.z0_std, "z_low": dyn.z_low, "z_high": dyn.z_high}
