"""The screen world model: P(hit) of every gene of a screen, as a bootstrap ensemble, refit each round.

`ScreenWorldModel(spec)` knows the screen's library (gene names, never scores) and the gene knowledge.
Before any result it is the prior: the base rate scaled by the rank of the gene's STRING degree
(well-connected genes score in more screens); every member agrees. `fit(history)` trains M small
MLPs (one vectorised module), each on a bootstrap resample of the tested genes, on features = static
knowledge + the task-text match of the gene's sets + neighbour aggregates of the results so far
(`ScreenFeatures`), target = the lab's "hit" readout. Each member learns a correction to the prior's
logit, starting at zero and on unweighted classes, so a few dozen hits move the prior instead of
replacing it.

How far the learned members are trusted is decided by the campaign's own results (`blend_with_prior`,
default): the results are replayed round by round (blocks of `budget.batch`, in the order they came),
a model is fitted on the rounds before each one and scored on it, and the summed log-likelihood
ratio against the prior (prequential evidence, in nats) gives the learned model's posterior weight
w = sigmoid(evidence), even odds before there is any. Every member's P(hit) is then
w * learned + (1 - w) * prior. On a screen whose hits follow the features the weight goes to 1; on
one where they do not, the campaign falls back on its prior instead of chasing noise.
To the planner it is a BoTorch `EnsembleModel` over gene indices (a screen readout is a trajectory
of length one): X (..., n, 1) index -> (..., M, n, 1) P(hit).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from botorch.models.ensemble import EnsembleModel
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from scipy.stats import rankdata
from torch import Tensor

from wetloop.campaign import (
    CampaignSpec,
    Intervention,
    Observation,
    SpecError,
    StrictSettings,
)
from wetloop.worldmodel import torch_threads
from wetloop.worldmodel.errors import ModelFileError

from ._features import ScreenFeatures
from ._genes import GeneKnowledge
from ._hgnc import load_essentials, load_screen

__all__ = ["ScreenModelConfig", "ScreenEnsembleModel", "ScreenWorldModel", "ScreenFitReport", "screen_features"]


class ScreenModelConfig(StrictSettings):
    """Ensemble size and training of the screen model (env prefix `WETLOOP_SCREENMODEL_`)."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SCREENMODEL_", extra="forbid")

    members: int = Field(default=16, ge=2)
    hidden: int = Field(default=4, ge=1)
    epochs: int = Field(default=300, ge=1)
    lr: float = Field(default=0.03, gt=0)
    weight_decay: float = Field(default=3e-3, ge=0)
    prior_hit_rate: float = Field(default=0.05, gt=0, lt=1)
    blend_with_prior: bool = True  # weigh the learned members against the prior by prequential evidence


class ScreenFitReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_tested: int
    n_hits: int
    final_loss: float
    seconds: float
    version: str
    learned_weight: float = 1.0  # posterior weight of the learned members against the prior
    evidence_nats: float = 0.0  # prequential log-likelihood ratio, learned model vs prior


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
def _features_cached(screen: str, data_dir: str | None, question: str) -> ScreenFeatures:
    s = load_screen(screen, data_dir)
    task = f"{s.task} {s.measurement}".strip() or question
    return ScreenFeatures.build(GeneKnowledge.load(), s.genes, task)


def screen_features(spec: CampaignSpec) -> ScreenFeatures:
    """The feature builder of a screen campaign's library (built, and the screen read, once per process)."""
    opts = spec.world_options
    return _features_cached(opts["screen"], opts.get("data_dir"), spec.question)


def _rank01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled into (0, 1), ties sharing their average rank: genes the knowledge cannot tell apart
    (e.g. the ~17,000 with no text prior) get the same value, whatever their order in the library."""
    return (rankdata(x, method="average") - 0.5) / len(x)


class ScreenWorldModel:
    """P(hit) of a screen's genes from knowledge and results; see the module docstring."""

    def __init__(
        self, spec: CampaignSpec, config: ScreenModelConfig | None = None, features: ScreenFeatures | None = None
    ) -> None:
        self.spec, self.config = spec, config or ScreenModelConfig()
        self.features = features if features is not None else screen_features(spec)
        self.genes = self.features.genes
        self.gene_index = {g: i for i, g in enumerate(self.genes)}
        self.variable = spec.interventions[0].name
        library = "\n".join(self.genes).encode() + self.features.prior.tobytes()
        self._library = hashlib.sha256(library).hexdigest()  # keys the in-process cache of fits
        self.probs = torch.from_numpy(np.tile(self.prior_probability(), (self.config.members, 1)))  # (M, n)
        self.version, self.fitted = "prior", False
        self.last_fit: ScreenFitReport | None = None

    def prior_probability(self) -> np.ndarray:
        """(n,) P(hit) before any result: the base rate scaled by the rank of the gene's STRING degree.
        (The task-text match of the gene's sets is a feature the members learn from, not part of the
        prior: on both benchmark screens its best-matched genes were hits less often than the
        best-connected ones; `benchmarks/screen_signal.py`.)"""
        return (self.config.prior_hit_rate * 2 * _rank01(self.features.static[:, 0])).astype(np.float32)

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
        return torch.tensor(
            [[float(self.gene_index.get(str(x.values[self.variable]), -1))] for x in interventions], dtype=torch.float64
        ).reshape(-1, 1)

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
        learned, loss = self._learned(tested, hit, score)
        evidence, weight = 0.0, 1.0
        if learned is not None:
            if self.config.blend_with_prior:
                evidence = self._evidence(history)
                weight = float(1.0 / (1.0 + np.exp(-evidence)))
                learned = weight * learned + (1.0 - weight) * torch.from_numpy(self.prior_probability())
            self.probs, self.fitted = learned.float().clone(), True
        key = self._key(tested, hit)
        self.version = hashlib.sha256(key.encode()).hexdigest()[:12]
        self.last_fit = report = ScreenFitReport(
            n_tested=int(tested.sum()),
            n_hits=int(hit[tested].sum()),
            final_loss=loss,
            seconds=time.perf_counter() - t0,
            version=self.version,
            learned_weight=weight,
            evidence_nats=evidence,
        )
        return report

    def _key(self, tested: np.ndarray, hit: np.ndarray) -> str:
        idx = np.flatnonzero(tested)
        return json.dumps([self.spec.seed, idx.tolist(), hit[idx].astype(int).tolist(), self.config.model_dump_json()])

    def _learned(self, tested: np.ndarray, hit: np.ndarray, score: np.ndarray) -> tuple[Tensor | None, float]:
        """The learned members' P(hit) (M, n) from these results (None while they hold one class only)."""
        idx = np.flatnonzero(tested)
        if not (hit[idx].sum() >= 1 and (1 - hit[idx]).sum() >= 1):
            return None, 0.0
        key = hashlib.sha256((self._library + self._key(tested, hit)).encode()).hexdigest()
        if key not in _FITTED:
            X = torch.from_numpy(self.design(tested, hit, score))
            seed = int(hashlib.sha256(json.dumps([self.spec.seed, idx.tolist()]).encode()).hexdigest()[:8], 16)
            with torch_threads(1):  # a tiny problem: threads only add overhead
                offset = torch.from_numpy(_logit(self.prior_probability()))
                _FITTED[key] = _train(X, idx, torch.from_numpy(hit[idx]).float(), self.config, seed, offset)
            while len(_FITTED) > 32:
                _FITTED.popitem(last=False)  # the least recently used
        _FITTED.move_to_end(key)
        return _FITTED[key]

    def _evidence(self, history: Sequence[tuple[Intervention, Observation]]) -> float:
        """Prequential log-likelihood ratio (nats) of the learned model against the prior: the results,
        in the order they came, in blocks of one round's batch; each block scored by a model fitted
        on the blocks before it (blocks before any fit are skipped)."""
        results = [
            (x, o)
            for x, o in history
            if self.gene_index.get(str(x.values.get(self.variable))) is not None and o.status == "ok" and "hit" in o.readouts
        ]
        b, prior, total = self.spec.budget.batch, self.prior_probability().astype(np.float64), 0.0
        for start in range(b, len(results), b):
            learned, _ = self._learned(*self.observed(results[:start]))
            if learned is None:
                continue
            p = learned.mean(0).numpy().astype(np.float64)
            nxt, y, _ = self.observed(results[start : start + b])
            total += _loglik(p[nxt], y[nxt]) - _loglik(prior[nxt], y[nxt])
        return total

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


_FITTED: OrderedDict[str, tuple[Tensor, float]] = OrderedDict()  # fits of past rounds' data, reused in-process


def _loglik(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p)).astype(np.float32)


def _train(X: Tensor, idx: np.ndarray, y: Tensor, cfg: ScreenModelConfig, seed: int, offset: Tensor) -> tuple[Tensor, float]:
    """Bootstrap ensemble of 1-hidden-layer MLPs, each learning a correction to `offset` (n,), the prior's
    logit, from zero and on unweighted classes (class-balanced members trained from scratch overestimated
    P(hit) and did worse than the prior alone). X (n, F); y (k,) for rows idx -> probs (M, n), final loss."""
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
