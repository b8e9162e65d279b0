"""`TrajectoryWorldModel`: the user-facing world model (fit, encode/decode, bands, save/load).

It owns the data handling and the lifecycle; the maths lives in `_ensemble` (the vectorised
module), `_rollout` (particles) and `_botorch` (the planner's view). Each `fit` refits from
scratch with the configured seed: with a few thousand transitions that takes seconds, and it
makes the model a pure function of the data so far (a warm start would make it depend on the
order in which rounds arrived).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from wetloop.campaign import Band, CampaignSpec, Intervention, Observation
from wetloop.worldmodel import GaussianEnsemble, TrainRecord, decode, encode, torch_threads, train_ensemble
from wetloop.worldmodel.errors import ModelFileError, NotFittedError, NoTrainingData

from ._botorch import TrajectoryEnsembleModel
from ._config import WorldModelConfig
from ._features import Day, Featuriser, day_from_pair
from ._outcome import OutcomeModel

__all__ = ["TrajectoryWorldModel", "FitReport"]

_FORMAT = "wetloop.worldmodel.trajectory/1"


class FitReport(BaseModel):
    """What one `fit` did. Losses are the training objective (mean member Gaussian NLL on the
    bootstrap resamples, standardised units) of the first and last epoch. `nll_one_step` is per
    transition, in standardised target units, of the members' equal-weight Gaussian mixture on all
    training transitions (held-in, not a test score); `rmse_one_step_mg_dl` is its mean's error."""

    model_config = ConfigDict(frozen=True)

    n_days: int
    n_skipped: int
    n_transitions: int
    epochs: int
    steps: int
    first_loss: float
    final_loss: float
    seconds: float
    nll_one_step: float
    rmse_one_step_mg_dl: float
    version: str


class TrajectoryWorldModel:
    """Learns glucose dynamics of one campaign's patient from observed days; rolls regimens forward."""

    def __init__(self, spec: CampaignSpec, config: WorldModelConfig | None = None) -> None:
        self.spec = spec
        self.config = config if config is not None else WorldModelConfig()
        self.featuriser = Featuriser.build(spec, self.config)
        self.outcome = OutcomeModel(spec)
        self.steps = int(round(float(spec.world_options.get("hours", 24)) * 60.0 / self.config.dt_min))
        self._ensemble: GaussianEnsemble | None = None
        self._botorch_models: dict[int, TrajectoryEnsembleModel] = {}
        self._y0: tuple[float, float] = (0.0, 0.0)
        self.last_fit: FitReport | None = None

    # ---- fitting -------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._ensemble is not None

    def _days(self, data: Sequence[tuple[Intervention, Observation]]) -> list[Day]:
        """The usable days of `data` on the model grid ("ok" observations with a trajectory)."""
        return [
            day_from_pair(self.spec, iv, obs, self.config.dt_min)
            for iv, obs in data
            if obs.status == "ok" and obs.trajectory is not None
        ]

    def fit(self, data: Sequence[tuple[Intervention, Observation]]) -> FitReport:
        """Refit from scratch on every "ok" day of `data`; other observations are skipped."""
        start, days = time.perf_counter(), self._days(data)
        if not days:
            statuses = sorted({obs.status for _, obs in data})
            raise NoTrainingData(
                f"fit needs at least one observation with status 'ok' and a trajectory; got {len(data)} "
                f"observation(s) with status(es) {statuses}. Run a first batch of experiments, then fit.",
                data=data,
            )
        with torch_threads(self.config.threads):
            ens, record, x, y = self._train(days)
            nll, rmse = self._held_in(ens, x, y)
        y0 = self.featuriser.to_state(torch.tensor([d.glucose[0] for d in days], dtype=torch.float64))
        self._ensemble, self._y0 = ens, (float(y0.mean()), float(y0.std()) if len(y0) > 1 else 0.0)
        self.last_fit = FitReport(
            n_days=len(days),
            n_skipped=len(data) - len(days),
            n_transitions=len(x),
            epochs=record.epochs,
            steps=record.steps,
            first_loss=record.losses[0],
            final_loss=record.losses[-1],
            seconds=time.perf_counter() - start,
            nll_one_step=nll,
            rmse_one_step_mg_dl=rmse,
            version=self.version,
        )
        return self.last_fit

    def _train(self, days: list[Day]) -> tuple[GaussianEnsemble, TrainRecord, Tensor, Tensor]:
        """A fresh ensemble trained on the days' transitions (x (N, d_in), y (N, 1)), returned with them."""
        cfg = self.config
        x, y = self.featuriser.transitions(days)
        groups = torch.repeat_interleave(torch.arange(len(days)), torch.tensor([d.steps for d in days]))
        ens = GaussianEnsemble(cfg.members, x.shape[1], 1, cfg.hidden, cfg.layers, seed=cfg.seed)
        record = train_ensemble(
            ens,
            x,
            y,
            groups=groups if cfg.bootstrap == "day" else None,
            epochs=cfg.epochs,
            min_steps=cfg.min_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            bound_weight=cfg.logvar_bound_weight,
            seed=cfg.seed,
        )
        return ens, record, x, y

    @torch.no_grad()
    def _held_in(self, ens: GaussianEnsemble, x: Tensor, y: Tensor) -> tuple[float, float]:
        """Mixture NLL (standardised units) and mixture-mean RMSE (mg/dL) of one-step predictions, training set.

        Shapes: x (N, d_in) raw features, y (N, 1) observed state changes.
        """
        mean, logvar = ens(ens.standardise_x(x).expand(ens.members, -1, -1))
        ys = (y - ens.y_mean) / ens.y_std
        logp = -0.5 * ((ys - mean) ** 2 / logvar.exp() + logvar + torch.log(torch.tensor(2 * torch.pi)))
        nll = -(torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(ens.members)))).mean()
        y_now = x[:, :1].double()
        pred = self.featuriser.to_glucose(y_now + (mean.mean(0) * ens.y_std + ens.y_mean).double())
        true = self.featuriser.to_glucose(y_now + y.double())
        return float(nll), float(((pred - true) ** 2).mean().sqrt())

    # ---- the planner's view --------------------------------------------------------------
    def _require(self, what: str) -> GaussianEnsemble:
        if self._ensemble is None:
            raise NotFittedError(what, model=self)
        return self._ensemble

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> unit-cube points. Shape (n, d) float64, columns as in `spec.interventions`."""
        return encode(self.spec, interventions)

    def decode(self, X: Tensor) -> list[Intervention]:
        """Unit-cube points (n, d) -> interventions (values clipped to the cube)."""
        return decode(self.spec, X)

    def botorch_model(self, seed: int | None = None) -> TrajectoryEnsembleModel:
        """The fitted model as a BoTorch `EnsembleModel` (seeded rollouts; `seed` defaults to the config's)."""
        ens = self._require("build a BoTorch model")
        seed = self.config.seed if seed is None else seed
        cached = self._botorch_models.get(seed)
        if cached is None or cached.ensemble is not ens:  # one per seed and fit, so a rollout can be reused
            cached = TrajectoryEnsembleModel(
                self.spec,
                ens,
                self.featuriser,
                y0=self._y0,
                steps=self.steps,
                particles=self.config.particles,
                seed=seed,
                chunk=self.config.rollout_chunk,
                threads=self.config.threads,
                rollout_noise=self.config.rollout_noise,
            )
            self._botorch_models[seed] = cached
        return cached

    def sample(self, interventions: Sequence[Intervention]) -> Tensor:
        """Glucose trajectory samples, mg/dL. Shape (n, S, T), samples member-major."""
        return self.botorch_model()(self.encode(interventions).float()).transpose(0, 1)

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band:
        """Median and central `level` interval of the glucose samples at each model time point."""
        samples = self.sample([intervention])[0].double()  # (S, T)
        q = torch.tensor([(1 - level) / 2, 0.5, (1 + level) / 2], dtype=torch.float64)
        lower, median, upper = torch.quantile(samples, q, dim=0).tolist()
        times = tuple(self.config.dt_min * i for i in range(samples.shape[-1]))
        return Band(series="glucose", level=level, times_min=times, lower=tuple(lower), median=tuple(median), upper=tuple(upper))

    # ---- identity and persistence --------------------------------------------------------
    @property
    def version(self) -> str:
        """A short hash of the weights and config: equal versions give equal predictions."""
        ens = self._require("report a version")
        h = hashlib.sha256(self.config.model_dump_json().encode())
        for name, tensor in sorted(ens.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().contiguous().numpy().tobytes())
        h.update(repr(self._y0).encode())
        return h.hexdigest()[:12]

    def _world_key(self) -> str:
        """What the weights depend on in the spec: the world, its options, the variables."""
        spec = self.spec
        blob = {
            "world": spec.world,
            "options": spec.world_options,
            "variables": [v.model_dump(mode="json") for v in spec.interventions],
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write weights, normalisers, config and the initial-state statistics (torch.save)."""
        ens = self._require("be saved")
        payload: dict[str, Any] = {
            "format": _FORMAT,
            "config": self.config.model_dump(mode="json"),
            "world": self._world_key(),
            "state": ens.state_dict(),
            "d_in": ens.d_in,
            "y0": list(self._y0),
            "fit": self.last_fit.model_dump(mode="json") if self.last_fit else None,
        }
        path = Path(path)
        torch.save(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path, spec: CampaignSpec) -> TrajectoryWorldModel:
        """Restore a saved model for `spec`; its predictions equal the saved model's."""
        payload = _read(Path(path))
        model = cls(spec, WorldModelConfig(**payload["config"]))
        if payload["world"] != model._world_key():
            raise ModelFileError(
                f"{path} was fitted for another world (patient, meals or intervention variables differ from "
                f"spec {spec.name!r}); refit the model on this campaign's data",
                path=path,
            )
        cfg = model.config
        ens = GaussianEnsemble(cfg.members, payload["d_in"], 1, cfg.hidden, cfg.layers, seed=cfg.seed)
        ens.load_state_dict(payload["state"])
        model._ensemble, model._y0 = ens.eval(), (float(payload["y0"][0]), float(payload["y0"][1]))
        model.last_fit = FitReport(**payload["fit"]) if payload["fit"] else None
        return model


def _read(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"no saved world model at {path}; check the path or fit a new model", path=path) from None
    except Exception as exc:  # torch raises several kinds for a corrupt or foreign file
        message = f"{path} is not a readable torch file ({exc}); save the model again with `save`"
        raise ModelFileError(message, path=path) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ModelFileError(f"{path} is not a wetloop trajectory world model (format {_FORMAT!r})", path=path)
    return payload
