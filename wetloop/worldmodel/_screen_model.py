"""The screen world model: P(hit) of every gene of a screen, as a bootstrap ensemble, refit each round.

`ScreenWorldModel(spec)` knows the screen's library (gene names, never scores) and the gene knowledge.
`fit(history)` trains M small MLPs (one vectorised module), each on a bootstrap resample of the
tested genes, on features = static knowledge + text prior + neighbour aggregates of the results so
far (`ScreenFeatures`), target = the lab's "hit" readout; then predicts P(hit) for every gene. Before
any result it is a prior model: every member gives the knowledge prior (no disagreement). With
`prior_offset` (default) each member learns a correction to the prior's logit, starting at zero and
on unweighted classes, so a few dozen hits move the prior instead of replacing it (class-balanced
members trained from scratch overestimated P(hit) and did worse than the prior alone).
To the planner it is a BoTorch `EnsembleModel` over gene indices (a screen readout is a trajectory
of length one): X (..., n, 1) index -> (..., M, n, 1) P(hit).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from botorch.models.ensemble import EnsembleModel
from scipy.stats import rankdata
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from torch import Tensor

from wetloop.campaign import CampaignSpec, Intervention, Observation, SpecError, load_essentials, load_screen

from ._config import torch_threads
from ._genes import GeneKnowledge
from ._screen_features import ScreenFeatures
from .errors import ModelFileError

__all__ = ["ScreenModelConfig", "ScreenEnsembleModel", "ScreenWorldModel", "ScreenFitReport", "screen_features"]


class ScreenModelConfig(BaseSettings):
    """Ensemble size and training of the screen model (env prefix `WETLOOP_SCREENMODEL_`)."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SCREENMODEL_", extra="ignore")

    members: int = Field(default=16, ge=2)
    hidden: int = Field(default=4, ge=1)
    epochs: int = Field(default=300, ge=1)
    lr: float = Field(default=0.03, gt=0)
    weight_decay: float = Field(default=3e-3, ge=0)
    prior_hit_rate: float = Field(default=0.05, gt=0, lt=1)
    prior_offset: bool = True  # members learn a correction to the knowledge prior's logit (no class balancing)


class ScreenFitReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_tested: int
    n_hits: int
    final_loss: float
    seconds: float
    version: str


class ScreenEnsembleModel(EnsembleModel):
    """Members' P(hit) per gene, served by index. probs (M, n). forward: X (..., q, 1) -> (..., M, q, 1)."""

    def __init__(self, probs: Tensor) -> None:
        super().__init__()
        self.probs = probs
        self.members, self.particles, self.times_min = probs.shape[0], 1, (0.0,)
        self._num_outputs = 1

    def forward(self, X: Tensor) -> Tensor:
        idx = X[..., 0].long()  # (..., q)
        out = self.probs[:, idx]  # (M, ..., q)
        return out.movedim(0, -2).unsqueeze(-1).to(torch.float64)


@functools.cache
def _features_cached(screen: str, data_dir: str | None, task: str) -> ScreenFeatures:
    s = load_screen(screen, data_dir)
    return ScreenFeatures.build(GeneKnowledge.load(), s.genes, task)


def screen_features(spec: CampaignSpec) -> ScreenFeatures:
    """The feature builder of a screen campaign's library (cached per process)."""
    opts = spec.world_options
    screen = load_screen(opts["screen"], opts.get("data_dir"))
    task = f"{screen.task} {screen.measurement}".strip() or spec.question
    return _features_cached(opts["screen"], opts.get("data_dir"), task)


def _rank01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled into (0, 1), ties sharing their average rank: genes the knowledge cannot tell apart
    (e.g. the ~17,000 with no text prior) get the same value, whatever their order in the library."""
    return (rankdata(x, method="average") - 0.5) / len(x)


class ScreenWorldModel:
    """P(hit) of a screen's genes from knowledge and results; see the module docstring."""

    def __init__(self, spec: CampaignSpec, config: ScreenModelConfig | None = None, features: ScreenFeatures | None = None) -> None:
        self.spec, self.config = spec, config or ScreenModelConfig()
        self.features = features if features is not None else screen_features(spec)
        self.genes = self.features.genes
        self.gene_index = {g: i for i, g in enumerate(self.genes)}
        self.variable = spec.interventions[0].name
        self.probs = torch.from_numpy(np.tile(self.prior_probability(), (self.config.members, 1)))  # (M, n)
        self.version, self.last_fit, self.fitted = "prior", None, False

    def prior_probability(self) -> np.ndarray:
        """(n,) P(hit) before any result: the base rate scaled by the rank of (text prior + network degree)."""
        f = self.features
        score = _rank01(f.prior) + _rank01(f.static[:, 0])
        return (self.config.prior_hit_rate * 2 * _rank01(score)).astype(np.float32)

    # -- the planner's view -------------------------------------------------------------------
    @functools.cached_property
    def selectable(self) -> np.ndarray:
        """(n,) bool: the genes the planner may choose. With world option `exclude_core_essential`
        (default true) the CEGv2 core-essential genes are left out: knocking one out scores in almost
        any screen and says nothing specific about the phenotype (set it false to screen for them)."""
        keep = np.ones(len(self.genes), bool)
        exclude = self.spec.world_options.get("exclude_core_essential", True)
        if not isinstance(exclude, bool):
            raise SpecError(f"world_options.exclude_core_essential must be true or false, got {exclude!r}")
        if exclude:
            essential = load_essentials()
            keep &= np.array([g not in essential for g in self.genes])
        return keep

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        """Interventions -> X (n, 1) float64 gene indices (-1 for a gene not in the library)."""
        return torch.tensor([[float(self.gene_index.get(str(x.values[self.variable]), -1))] for x in interventions],
                            dtype=torch.float64).reshape(-1, 1)

    def botorch_model(self) -> ScreenEnsembleModel:
        return ScreenEnsembleModel(self.probs)

    # -- fitting ------------------------------------------------------------------------------
    def observed(self, history: Sequence[tuple[Intervention, Observation]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tested (n,) bool, hit (n,), score (n,)) from the ok results of library genes."""
        n = len(self.genes)
        tested, hit, score = np.zeros(n, bool), np.zeros(n), np.zeros(n)
        for x, obs in history:
            i = self.gene_index.get(str(x.values.get(self.variable)))
            if i is not None and obs.status == "ok" and "hit" in obs.readouts:
                tested[i], hit[i], score[i] = True, obs.readouts["hit"], obs.readouts.get("score", 0.0)
        return tested, hit, score

    def design(self, tested: np.ndarray, hit: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Feature matrix (n, F + 1 + D), standardised over the library."""
        f = self.features
        X = np.concatenate([f.static, _rank01(f.prior)[:, None], f.dynamic(tested, hit, score)], axis=1)
        return ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)

    def fit(self, history: Sequence[tuple[Intervention, Observation]]) -> ScreenFitReport:
        """Refit from scratch (seeded by spec.seed and the data) on every tested gene; predict all genes."""
        t0 = time.perf_counter()
        tested, hit, score = self.observed(history)
        X = torch.from_numpy(self.design(tested, hit, score))
        idx = np.flatnonzero(tested)
        seed = int(hashlib.sha256(json.dumps([self.spec.seed, idx.tolist()]).encode()).hexdigest()[:8], 16)
        loss = 0.0
        if hit[idx].sum() >= 1 and (1 - hit[idx]).sum() >= 1:
            with torch_threads(1):  # a tiny problem: threads only add overhead
                offset = torch.from_numpy(_logit(self.prior_probability())) if self.config.prior_offset else None
                self.probs, loss = _train(X, idx, torch.from_numpy(hit[idx]).float(), self.config, seed, offset)
            self.fitted = True
        self.version = hashlib.sha256(f"{seed}".encode()).hexdigest()[:12]
        self.last_fit = ScreenFitReport(n_tested=len(idx), n_hits=int(hit[idx].sum()), final_loss=loss,
                                        seconds=time.perf_counter() - t0, version=self.version)
        return self.last_fit

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), probs=self.probs.numpy(), version=np.array(self.version), fitted=np.array(self.fitted))

    @classmethod
    def load(cls, path: str | Path, spec: CampaignSpec) -> ScreenWorldModel:
        try:
            z = np.load(Path(path))
            model = cls(spec)
            probs = torch.from_numpy(z["probs"])
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(f"cannot read screen model {path}: {exc}; refit it (rerun the round)", path=path) from None
        if probs.shape[1] != len(model.genes):
            raise ModelFileError(f"screen model {path} has {probs.shape[1]} genes, the screen has {len(model.genes)}", path=path)
        model.probs, model.version, model.fitted = probs, str(z["version"]), bool(z["fitted"])
        return model


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


def _train(X: Tensor, idx: np.ndarray, y: Tensor, cfg: ScreenModelConfig, seed: int,
           offset: Tensor | None = None) -> tuple[Tensor, float]:
    """Bootstrap ensemble of 1-hidden-layer MLPs. X (n, F); y (k,) for rows idx -> probs (M, n), final loss.
    With `offset` (n,) (the prior's logit) each member learns a correction to it, starting from zero, on
    unweighted classes: with few results the prediction stays near the prior instead of overshooting."""
    if offset is not None:
        return _train_residual(X, idx, y, cfg, seed, offset)
    g = torch.Generator().manual_seed(seed)
    M, F, H = cfg.members, X.shape[1], cfg.hidden
    boot = torch.randint(0, len(idx), (M, len(idx)), generator=g)  # (M, k) bootstrap rows
    Xb, yb = X[torch.from_numpy(idx)][boot], y[boot]  # (M, k, F), (M, k)
    W1 = (torch.randn(M, F, H, generator=g) / F**0.5).requires_grad_()
    b1 = torch.zeros(M, 1, H, requires_grad=True)
    W2 = (torch.randn(M, H, 1, generator=g) / H**0.5).requires_grad_()
    b2 = torch.full((M, 1, 1), -2.0, requires_grad=True)
    net = lambda Z: (torch.tanh(Z @ W1 + b1) @ W2 + b2).squeeze(-1)  # noqa: E731  (M, *, F) -> (M, *)
    opt = torch.optim.Adam([W1, b1, W2, b2], lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos = (yb.sum(1, keepdim=True) + 1) / (yb.shape[1] + 2)
    weight = torch.where(yb > 0, 0.5 / pos, 0.5 / (1 - pos))  # balanced classes per member
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(Xb), yb, weight=weight)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = net(X.expand(M, *X.shape))  # (M, n)
    return torch.sigmoid(logits + torch.log(pos / (1 - pos))), float(loss.detach())  # undo the class balancing


def _train_residual(X: Tensor, idx: np.ndarray, y: Tensor, cfg: ScreenModelConfig, seed: int, offset: Tensor) -> tuple[Tensor, float]:
    g = torch.Generator().manual_seed(seed)
    M, F, H = cfg.members, X.shape[1], cfg.hidden
    boot = torch.randint(0, len(idx), (M, len(idx)), generator=g)  # (M, k) bootstrap rows
    rows = torch.from_numpy(idx)[boot]
    Xb, yb, ob = X[rows], y[boot], offset[rows]  # (M, k, F), (M, k), (M, k)
    W1 = (torch.randn(M, F, H, generator=g) / F**0.5).requires_grad_()
    b1 = torch.zeros(M, 1, H, requires_grad=True)
    W2 = torch.zeros(M, H, 1, requires_grad=True)  # the correction starts at zero: the prior
    b2 = torch.zeros(M, 1, 1, requires_grad=True)
    net = lambda Z: (torch.tanh(Z @ W1 + b1) @ W2 + b2).squeeze(-1)  # noqa: E731  (M, *, F) -> (M, *)
    opt = torch.optim.Adam([W1, b1, W2, b2], lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(Xb) + ob, yb)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = net(X.expand(M, *X.shape)) + offset  # (M, n)
    return torch.sigmoid(logits), float(loss.detach())
