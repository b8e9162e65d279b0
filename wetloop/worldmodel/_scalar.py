"""`ScalarWorldModel`: encoded intervention -> every scalar readout the lab reports, for any world.

Two families behind one face. `kind="ensemble"` is a deep ensemble (`GaussianEnsemble`, members
vectorised, each on its own bootstrap) over all readouts at once, standardised per readout; its
BoTorch model draws `particles` values from each member's Gaussian with fixed noise (common random
numbers), S = members * particles, member-major. `kind="gp"` is a BoTorch GP (`_scalar_gp`), shown
to the planner the same way: members = draws of the latent function, particles = noise draws of each. Samples are (b, S, q, R) in
readout units, R = len(`readout_names`) in `outputs` order; `outcome.readouts` names them and adds
the safety event readouts.

    model = ScalarWorldModel(spec, world.readouts(spec), kind="ensemble")
    report = model.fit(history)                      # [(Intervention, Observation), ...]
    values = model.botorch_model().posterior(model.encode(candidates)).values   # (S, n, R)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from botorch.models.ensemble import EnsembleModel
from gpytorch.utils.warnings import GPInputWarning
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from torch import Tensor

from wetloop.campaign import (
    CampaignSpec,
    Intervention,
    Observation,
    Readout,
    StrictSettings,
    computed_readouts,
    unsafe_readout_name,
)

from ._config import torch_threads
from ._ensemble import train_ensemble
from ._generic import (
    RobustEnsemble,
    check_key,
    encode_interventions,
    read_payload,
    require_encodable,
    spec_key,
    weights_hash,
)
from ._readout_torch import SampleOutcome
from ._scalar_gp import GPDrawsModel, GPInputs, fit_gp, new_gp
from .errors import NotFittedError, NoTrainingData, WorldModelError

__all__ = ["ScalarEnsembleModel", "ScalarFitReport", "ScalarModelConfig", "ScalarWorldModel"]

_FORMAT = "wetloop.worldmodel.scalar/1"
History = Sequence[tuple[Intervention, Observation]]


class ScalarModelConfig(StrictSettings):
    """Size and training of the scalar model (environment prefix `WETLOOP_SCALARMODEL_`)."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SCALARMODEL_", frozen=True, extra="forbid")

    members: int = Field(5, ge=2, description="ensemble members (each its own bootstrap and init)")
    hidden: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    epochs: int = Field(100, ge=1)
    min_steps: int = Field(1000, ge=0, description="at least this many gradient steps, for small data")
    batch_size: int = Field(64, ge=4)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    logvar_bound_weight: float = Field(0.01, ge=0)
    particles: int = Field(8, ge=1, description="draws per member (ensemble); S = members * particles")
    gp_members: int = Field(16, ge=2, description="GP family: latent-function draws, its 'members'")
    gp_particles: int = Field(4, ge=1, description="GP family: observation-noise draws per function draw")
    seed: int = 0
    threads: int | None = Field(1, ge=1, description="torch intra-op threads while fitting and predicting")


class ScalarFitReport(BaseModel):
    """What one `fit` did. `rmse` is the held-in error of the predictive mean per readout (readout units,
    training experiments: a sanity check, not a test score); losses are the ensemble's training NLL
    (standardised units; for the GP, the negative marginal log-likelihood per point, first = last)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["ensemble", "gp"]
    n_experiments: int
    n_skipped: int
    readouts: tuple[str, ...]
    dropped: tuple[str, ...]
    steps: int
    first_loss: float
    final_loss: float
    rmse: dict[str, float]
    seconds: float
    version: str
    selection: str = ""  # why this kind, when the campaign chose it (`ChosenScalarModel`)

    def summary(self) -> str:
        errors = ", ".join(f"{k} {v:.3g}" for k, v in self.rmse.items())
        dropped = f"; not reported by every experiment, so not modelled: {list(self.dropped)}" if self.dropped else ""
        chosen = f" [{self.selection}]" if self.selection else ""
        return (
            f"scalar {self.kind} refit on {self.n_experiments} experiment(s) in {self.seconds:.1f} s "
            f"(held-in RMSE: {errors}){dropped}; version {self.version}{chosen}"
        )


class ScalarEnsembleModel(EnsembleModel):
    """Readout draws of the ensemble. forward: X (batch..., q, d) encoded -> (batch..., S, q, R) readout units.

    Sample s belongs to member s // particles; its noise is fixed at construction and shared by every
    candidate (common random numbers). Attributes: `members`, `particles`, `times_min` (R zeros).
    """

    noise: Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(self, ensemble: RobustEnsemble, particles: int, seed: int) -> None:
        super().__init__()
        self.ensemble, self.members, self.particles = ensemble, ensemble.members, particles
        self._num_outputs = ensemble.d_out
        self.times_min: tuple[float, ...] = (0.0,) * ensemble.d_out
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("noise", torch.randn(ensemble.members, particles, 1, ensemble.d_out, generator=g))

    def forward(self, X: Tensor) -> Tensor:
        """X (batch..., q, d) -> (batch..., S, q, R), X's dtype."""
        ens = self.ensemble
        flat = ens.standardise_x(X.reshape(-1, X.shape[-1]).float())
        mean, logvar = ens(flat.expand(ens.members, -1, -1))  # (M, N, R) standardised
        draws = mean[:, None] + (0.5 * logvar[:, None]).exp() * self.noise  # (M, P, N, R)
        values = draws * ens.y_std + ens.y_mean
        return values.reshape(-1, *X.shape[:-1], ens.d_out).movedim(0, -3).to(X)


class ScalarWorldModel:
    """Any world's scalar readouts as a function of the encoded intervention (ensemble or GP)."""

    def __init__(
        self,
        spec: CampaignSpec,
        readouts: Sequence[Readout] = (),
        kind: Literal["ensemble", "gp"] = "ensemble",
        config: ScalarModelConfig | None = None,
    ) -> None:
        if kind not in ("ensemble", "gp"):
            raise WorldModelError(f"ScalarWorldModel kind must be 'ensemble' or 'gp', got {kind!r}")
        require_encodable(spec, "scalar world model")
        self.spec, self.kind = spec, kind
        self.readout_defs = tuple(readouts) or tuple(spec.readouts)
        self.config = config if config is not None else ScalarModelConfig()
        self.outputs: tuple[str, ...] = ()
        self._net: RobustEnsemble | None = None
        self._gp: Any = None
        self._gp_data: tuple[Tensor, Tensor] | None = None
        self._models: dict[int, EnsembleModel] = {}
        self.last_fit: ScalarFitReport | None = None

    # ---- data ----------------------------------------------------------------------------
    def candidates(self) -> tuple[str, ...]:
        """Readouts it would model: the objective, every declared readout, each series limit's event."""
        names = [self.spec.objective.readout, *(r.name for r in self.readout_defs)]
        names += [unsafe_readout_name(limit) for limit in self.spec.safety if limit.series is not None]
        return tuple(dict.fromkeys(names))

    def _values(self, obs: Observation) -> dict[str, float]:
        """An observation's readouts: those computed from its trajectory, overridden by what the lab reported."""
        return {**computed_readouts(self.spec, obs), **obs.readouts}

    def _table(self, data: History) -> tuple[list[Intervention], list[dict[str, float]], tuple[str, ...], tuple[str, ...]]:
        """Usable rows ("ok", finite objective), their values, the modelled readouts and the dropped ones."""
        rows = [(iv, self._values(obs)) for iv, obs in data if obs.status == "ok"]
        goal = self.spec.objective.readout
        rows = [(iv, v) for iv, v in rows if math.isfinite(v.get(goal, math.nan))]
        names = self.candidates()
        seen = [n for n in names if any(n in v for _, v in rows)]
        outputs = tuple(n for n in seen if all(math.isfinite(v.get(n, math.nan)) for _, v in rows))
        return [iv for iv, _ in rows], [v for _, v in rows], outputs, tuple(n for n in seen if n not in outputs)

    # ---- fitting -------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._net is not None or self._gp is not None

    @property
    def readout_names(self) -> tuple[str, ...]:
        """Every readout `outcome.readouts` returns (the modelled ones and the judgeable safety events)."""
        return self.outcome.names

    def fit(self, history: History) -> ScalarFitReport:
        """Refit from scratch (seeded) on every "ok" result with a finite objective readout."""
        start = time.perf_counter()
        ivs, values, outputs, dropped = self._table(history)
        if not ivs:
            statuses = sorted({obs.status for _, obs in history})
            raise NoTrainingData(
                f"the scalar model needs at least one 'ok' result with a finite {self.spec.objective.readout!r} readout; "
                f"got {len(history)} result(s) with status(es) {statuses}. Run a first batch, then fit.",
                data=history,
            )
        x = self.encode(ivs)
        y = torch.tensor([[v[n] for n in outputs] for v in values], dtype=torch.float64)
        with torch_threads(self.config.threads):
            steps, first, final = self._train(x, y)
            mean = self._mean(x)
        self.outputs, self._models = outputs, {}
        rmse = {n: float(e) for n, e in zip(outputs, ((mean - y) ** 2).mean(0).sqrt().tolist())}
        self.last_fit = ScalarFitReport(
            kind=self.kind,
            n_experiments=len(ivs),
            n_skipped=len(history) - len(ivs),
            readouts=outputs,
            dropped=dropped,
            steps=steps,
            first_loss=first,
            final_loss=final,
            rmse=rmse,
            seconds=time.perf_counter() - start,
            version=self._version(),
        )
        return self.last_fit

    def _train(self, x: Tensor, y: Tensor) -> tuple[int, float, float]:
        """Train the chosen family on x (N, d), y (N, R). Returns (steps, first loss, final loss)."""
        cfg = self.config
        if self.kind == "gp":
            self._gp_data = (GPInputs.of(self.spec)(x), y)  # raw: the GP keeps its targets standardised
            self._net, self._gp = None, new_gp(GPInputs.of(self.spec), *self._gp_data)
            nll = -fit_gp(self._gp, cfg.seed)
            return 0, nll, nll
        net = RobustEnsemble(cfg.members, x.shape[1], y.shape[1], cfg.hidden, cfg.layers, seed=cfg.seed)
        record = train_ensemble(
            net,
            x.float(),
            y.float(),
            epochs=cfg.epochs,
            min_steps=cfg.min_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            bound_weight=cfg.logvar_bound_weight,
            seed=cfg.seed,
        )
        self._net, self._gp = net, None
        return record.steps, record.losses[0], record.losses[-1]

    @torch.no_grad()
    def _mean(self, x: Tensor) -> Tensor:
        """Predictive mean (the members' mixture mean, or the GP's). Shapes: x (N, d) encoded -> (N, R) float64."""
        if self._gp is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GPInputWarning)  # asking about the training points is the point here
                return self._gp.posterior(GPInputs.of(self.spec)(x)).mean.double()
        net = self._require("predict")
        mean, _ = net(net.standardise_x(x.float()).expand(net.members, -1, -1))
        return (mean.mean(0) * net.y_std + net.y_mean).double()

    # ---- the planner's view --------------------------------------------------------------
    def _require(self, what: str) -> Any:
        if not self.is_fitted:
            raise NotFittedError(what, model=self)
        return self._net if self._net is not None else self._gp

    @property
    def outcome(self) -> SampleOutcome:
        """Readouts of samples (..., R): the modelled readouts and each judgeable safety event."""
        return SampleOutcome(self.spec, self.readout_defs, direct=self.outputs)

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> (n, d) float64: each variable's `Variable.encode` columns, in spec order."""
        return encode_interventions(self.spec, interventions)

    def botorch_model(self, seed: int | None = None) -> EnsembleModel:
        """The fitted model as a BoTorch `EnsembleModel`: X (b, q, d) -> values (b, S, q, R). Cached per seed and fit."""
        self._require("build a BoTorch model")
        seed = self.config.seed if seed is None else seed
        if seed not in self._models:
            if self._gp is not None:
                model: EnsembleModel = GPDrawsModel(
                    self._gp, GPInputs.of(self.spec), self.config.gp_members, self.config.gp_particles, seed
                )
            else:
                assert self._net is not None  # fitted (_require checked) and not a GP
                model = ScalarEnsembleModel(self._net, self.config.particles, seed)
            self._models[seed] = model
        return self._models[seed]

    def sample(self, interventions: Sequence[Intervention]) -> Tensor:
        """Readout draws. Shape (n, S, R), float64, columns in `outputs` order."""
        with torch_threads(self.config.threads), torch.no_grad():
            return self.botorch_model()(self.encode(interventions)).transpose(0, 1)

    def predict(self, interventions: Sequence[Intervention]) -> dict[str, Tensor]:
        """Mean and standard deviation of each modelled readout over the draws: name -> (n, 2)."""
        draws = self.sample(interventions)
        return {n: torch.stack([draws[..., j].mean(1), draws[..., j].std(1)], -1) for j, n in enumerate(self.outputs)}

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> None:
        """A scalar model predicts no time course: always None."""
        return

    # ---- identity and persistence --------------------------------------------------------
    def _tensors(self) -> list[tuple[str, Tensor]]:
        model = self._require("report a version")
        tensors = list(model.state_dict().items())
        if self._gp_data is not None:  # a GP's predictions depend on its training data too
            tensors += [("train_x", self._gp_data[0]), ("train_y", self._gp_data[1])]
        return tensors

    def _version(self) -> str:
        return weights_hash(self.config, self._tensors(), (self.kind, self.outputs))

    @property
    def version(self) -> str:
        """12 hex digits over weights (and a GP's data), config and outputs: equal versions predict equally."""
        return self._version()

    def _key(self) -> str:
        return spec_key(self.spec, kind=self.kind, readouts=[r.model_dump(mode="json") for r in self.readout_defs])

    def save(self, path: str | Path) -> Path:
        """Write config, outputs, weights (a GP: its training data and hyperparameters) with a format tag."""
        self._require("be saved")
        payload: dict[str, Any] = {
            "format": _FORMAT,
            "key": self._key(),
            "kind": self.kind,
            "config": self.config.model_dump(mode="json"),
            "outputs": list(self.outputs),
            "state": self._require("be saved").state_dict(),
            "fit": self.last_fit.model_dump(mode="json") if self.last_fit else None,
        }
        if self._gp_data is not None:
            payload["train"] = self._gp_data
        torch.save(payload, Path(path))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, spec: CampaignSpec, readouts: Sequence[Readout] = ()) -> ScalarWorldModel:
        """Restore a saved model for `spec`; ModelFileError if it was saved for other variables or readouts."""
        payload = read_payload(path, _FORMAT, "scalar world model")
        model = cls(spec, readouts, kind=payload["kind"], config=ScalarModelConfig(**payload["config"]))
        check_key(payload, model._key(), path, "variables, readouts or model kind")
        model.outputs = tuple(payload["outputs"])
        model._restore(payload)
        model.last_fit = ScalarFitReport(**payload["fit"]) if payload["fit"] else None
        return model

    def _restore(self, payload: dict[str, Any]) -> None:
        """Rebuild the fitted family from a payload's state (and a GP's training data)."""
        cfg = self.config
        if self.kind == "gp":
            self._gp_data = tuple(payload["train"])
            self._gp = new_gp(GPInputs.of(self.spec), *self._gp_data)
            self._gp.load_state_dict(payload["state"])
            self._gp.eval()
            return
        state = payload["state"]
        d_in, hidden = state["hidden.0.weight"].shape[1:]
        self._net = RobustEnsemble(cfg.members, d_in, len(self.outputs), hidden, cfg.layers, seed=cfg.seed)
        self._net.load_state_dict(state)
        self._net.eval()
