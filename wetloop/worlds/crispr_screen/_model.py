"""The screen world model: P(hit) of every gene of a screen, as an ensemble, refit each round.

`ScreenWorldModel(spec)` knows the screen's library (gene names, never scores) and the gene knowledge.
Before any result it is the prior: the base rate scaled by the rank of rank(STRING degree) +
`text_weight` * rank(the match of the screen's task text to the gene's sets): well-connected genes
score in more screens, and genes in sets named like the phenotype score more in this one. Every
member agrees. `fit(history)` refits the learned
members from the results so far (`ScreenModelConfig.learner`):

- "sets" (default): the results propagated through shared gene sets (MSigDB sets and co-essential
  modules): each set's hit enrichment z among its tested genes, summed over a gene's sets
  (`ScreenFeatures.set_propagation`), a kernel smoother with the shared-set kernel; and the tested
  genes' |score| ranks propagated the same way through the sets and through STRING
  (`ScreenFeatures.score_propagation`). A member ranks genes by rank(prior) + mix * rank(hits) +
  score_weight * rank(scores through sets) + network_weight * rank(scores through STRING); its
  P(hit) is the base rate scaled by that rank.
  Members differ by Bayesian-bootstrap weights on the tested genes (Gamma(k)/k, k =
  `bootstrap_shape`), so they disagree where the evidence rests on few genes.
- "mlp": M small MLPs (one vectorised module), each on a bootstrap resample of the tested genes, on
  features = static knowledge + the task-text match of the gene's sets + neighbour aggregates of the
  results so far (`ScreenFeatures`), each learning a correction to the prior's logit.
- "both": half the members of each kind.

How far the learned members are trusted is decided by the campaign's own results (`gate`): the
results are replayed round by round (blocks of `budget.batch`, in the order they came), a model is
fitted on the rounds before each one and scored on it against the prior (prequential), and its
weight w in the blend w * learned + (1 - w) * prior follows that score:
- "rank" (default): what the campaign needs is hits ranked above non-hits in the next round, so the
  replayed genes are scored by AUROC of the learned ranking minus the prior's on the same genes,
  divided by its DeLong standard error (z), and w = Phi(z - gate_offset) (Phi(-gate_offset) before
  any round can be scored). A model that matches the base rate but ranks no better earns nothing.
- "likelihood": w = sigmoid(summed log-likelihood ratio in nats), the earlier rule;
- "none": w = 1.
To the planner it is a BoTorch `EnsembleModel` over gene indices (a screen readout is a trajectory
of length one): X (..., n, 1) index -> (..., M, n, 1) P(hit).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from botorch.models.ensemble import EnsembleModel
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from scipy.stats import norm, rankdata
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

__all__ = [
    "ScreenModelConfig",
    "ScreenEnsembleModel",
    "ScreenWorldModel",
    "ScreenFitReport",
    "paired_auroc_difference",
    "screen_features",
]


class ScreenModelConfig(StrictSettings):
    """Ensemble size and training of the screen model (env prefix `WETLOOP_SCREENMODEL_`)."""

    model_config = SettingsConfigDict(env_prefix="WETLOOP_SCREENMODEL_", extra="forbid")

    members: int = Field(default=16, ge=2)
    prior_hit_rate: float = Field(default=0.05, gt=0, lt=1)
    learner: Literal["sets", "mlp", "both"] = "sets"  # "both": half the members each
    # learner "sets": weight of the propagation's rank against the prior's; shape k of the members' weights
    mix: float = Field(default=1.0, ge=0)
    # learner "sets": weights of the |score| propagation's ranks, through the gene sets and through STRING
    score_weight: float = Field(default=0.5, ge=0)
    network_weight: float = Field(default=1.0, ge=0)
    # the prior: rank(degree) + text_weight * rank(task-text match of the gene's sets); 0.5 was chosen
    # across the development screens (benchmarks/screen_prior.py)
    text_weight: float = Field(default=0.5, ge=0)
    bootstrap_shape: float = Field(default=16.0, gt=0)
    # learner "mlp"
    hidden: int = Field(default=4, ge=1)
    epochs: int = Field(default=300, ge=1)
    lr: float = Field(default=0.03, gt=0)
    weight_decay: float = Field(default=3e-3, ge=0)
    # how far the learned members are trusted against the prior (see the module docstring)
    gate: Literal["rank", "likelihood", "none"] = "rank"
    gate_offset: float = 1.0  # w = Phi(z - gate_offset): Phi(-1) = 0.16 before any evidence


class ScreenFitReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_tested: int
    n_hits: int
    final_loss: float
    seconds: float
    version: str
    learned_weight: float = 1.0  # weight of the learned members against the prior
    gate: str = "none"  # what set the weight: "rank", "likelihood" or "none"
    evidence: float = 0.0  # prequential evidence: rank z (gate "rank") or log-likelihood ratio in nats


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
        """(n,) P(hit) before any result: the base rate scaled by the prior's rank (`prior_rank`)."""
        return (self.config.prior_hit_rate * 2 * self.prior_rank()).astype(np.float32)

    def prior_rank(self) -> np.ndarray:
        """(n,) the prior's ranking, scaled into (0, 1): rank(STRING degree) + text_weight * rank(task-text
        match of the gene's sets), ranked again. The degree alone ranks best on the two T-cell screens;
        the text match adds most where it does not (Zhuang19_NK, Zhu21_SARSCoV2). Genes the knowledge
        cannot tell apart share their rank."""
        degree = _rank01(self.features.static[:, 0])
        if not self.config.text_weight:
            return degree
        return _rank01(degree + self.config.text_weight * _rank01(self.features.prior))

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
        evidence, weight, gate = 0.0, 1.0, self.config.gate
        if learned is not None:
            if gate == "rank":
                evidence = self._rank_evidence(history)
                weight = float(norm.cdf(evidence - self.config.gate_offset))
            elif gate == "likelihood":
                evidence = self._evidence(history)
                weight = float(1.0 / (1.0 + np.exp(-evidence)))
            learned = weight * learned + (1.0 - weight) * torch.from_numpy(self.prior_probability())
            self.probs, self.fitted = learned.float().clone(), True
        key = self._key(tested, hit, score)
        self.version = hashlib.sha256(key.encode()).hexdigest()[:12]
        self.last_fit = report = ScreenFitReport(
            n_tested=int(tested.sum()),
            n_hits=int(hit[tested].sum()),
            final_loss=loss,
            seconds=time.perf_counter() - t0,
            version=self.version,
            learned_weight=weight,
            gate=gate,
            evidence=evidence,
        )
        return report

    def _key(self, tested: np.ndarray, hit: np.ndarray, score: np.ndarray) -> str:
        idx = np.flatnonzero(tested)
        results = [idx.tolist(), hit[idx].astype(int).tolist(), score[idx].tolist()]
        return json.dumps([self.spec.seed, *results, self.config.model_dump_json()])

    def _learned(self, tested: np.ndarray, hit: np.ndarray, score: np.ndarray) -> tuple[Tensor | None, float]:
        """The learned members' P(hit) (M, n) from these results (None while they hold one class only)."""
        idx = np.flatnonzero(tested)
        if not (hit[idx].sum() >= 1 and (1 - hit[idx]).sum() >= 1):
            return None, 0.0
        key = hashlib.sha256((self._library + self._key(tested, hit, score)).encode()).hexdigest()
        if key not in _FITTED:
            seed = int(hashlib.sha256(json.dumps([self.spec.seed, idx.tolist()]).encode()).hexdigest()[:8], 16)
            cfg = self.config
            n_sets = {"sets": cfg.members, "mlp": 0, "both": cfg.members // 2}[cfg.learner]
            parts, loss = [], 0.0
            if n_sets:
                parts.append(self._propagated(idx, hit, score, seed, n_sets))
            if cfg.members - n_sets:
                X = torch.from_numpy(self.design(tested, hit, score))
                with torch_threads(1):  # a tiny problem: threads only add overhead
                    offset = torch.from_numpy(_logit(self.prior_probability()))
                    mlp = cfg.model_copy(update={"members": cfg.members - n_sets})
                    probs, loss = _train(X, idx, torch.from_numpy(hit[idx]).float(), mlp, seed, offset)
                parts.append(probs.float())
            _FITTED[key] = torch.cat(parts), loss
            while len(_FITTED) > 32:
                _FITTED.popitem(last=False)  # the least recently used
        _FITTED.move_to_end(key)
        return _FITTED[key]

    def _propagated(self, idx: np.ndarray, hit: np.ndarray, score: np.ndarray, seed: int, members: int) -> Tensor:
        """Learner "sets": members' P(hit) (members, n) from the rank of prior + mix * rank(hit propagation)
        + score_weight * rank(|score| through sets) + network_weight * rank(|score| through STRING), each
        member weighting the tested genes idx by its own Gamma(k)/k draws."""
        cfg, n = self.config, len(self.genes)
        rng = np.random.default_rng(seed)
        weight = np.zeros((members, n))
        weight[:, idx] = rng.gamma(cfg.bootstrap_shape, 1.0 / cfg.bootstrap_shape, (members, len(idx)))
        spread = self.features.set_propagation(weight, hit)  # (M, n)
        terms = [(cfg.mix, spread)]
        if cfg.score_weight or cfg.network_weight:
            by_sets, by_network = self.features.score_propagation(weight, score)
            terms += [(cfg.score_weight, by_sets), (cfg.network_weight, by_network)]
        prior_rank = self.prior_rank()
        probs = [
            cfg.prior_hit_rate * 2 * _rank01(prior_rank + sum(w * _rank01(x[m]) for w, x in terms if w)) for m in range(members)
        ]
        return torch.from_numpy(np.stack(probs).astype(np.float32))

    def _replay(self, history: Sequence[tuple[Intervention, Observation]]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The results in the order they came, in blocks of one round's batch: for each block after the
        first that a model could be fitted before, (learned mean P(hit), prior P(hit), hit) of its
        genes, the learned model fitted on the blocks before it."""
        results = [
            (x, o)
            for x, o in history
            if self.gene_index.get(str(x.values.get(self.variable))) is not None and o.status == "ok" and "hit" in o.readouts
        ]
        b, prior = self.spec.budget.batch, self.prior_probability().astype(np.float64)
        for start in range(b, len(results), b):
            learned, _ = self._learned(*self.observed(results[:start]))
            if learned is None:
                continue
            p = learned.mean(0).numpy().astype(np.float64)
            nxt, y, _ = self.observed(results[start : start + b])
            yield p[nxt], prior[nxt], y[nxt]

    def _evidence(self, history: Sequence[tuple[Intervention, Observation]]) -> float:
        """Prequential log-likelihood ratio (nats) of the learned model against the prior (gate "likelihood")."""
        return sum(_loglik(p, y) - _loglik(prior, y) for p, prior, y in self._replay(history))

    def _rank_evidence(self, history: Sequence[tuple[Intervention, Observation]]) -> float:
        """Prequential rank evidence (gate "rank"): every replayed gene is scored by the model fitted on the
        rounds before its own (its percentile in the library then, as both P(hit)s are rank-scaled);
        AUROC of those learned scores minus the prior's on the same genes, divided by its DeLong
        standard error. 0 while the replayed genes hold one class only."""
        blocks = list(self._replay(history))
        if not blocks:
            return 0.0
        p, prior, y = (np.concatenate(parts) for parts in zip(*blocks))
        if not 0 < y.sum() < len(y):
            return 0.0
        d, var = paired_auroc_difference(y, p, prior)
        return d / np.sqrt(var) if var > 0 else 0.0

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


def paired_auroc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """AUROC of score a minus AUROC of score b on the same labels y (0/1, both classes present), and the
    DeLong variance of that difference (DeLong et al. 1988; ties count one half)."""
    pos, neg = y > 0, y <= 0
    m, k = int(pos.sum()), int(neg.sum())
    v10, v01 = [], []
    for s in (a, b):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)  # (m, k)
        v10.append(psi.mean(1))
        v01.append(psi.mean(0))
    d10, d01 = v10[0] - v10[1], v01[0] - v01[1]  # per-hit and per-non-hit components of the difference
    var = (d10.var(ddof=1) / m if m > 1 else 0.0) + (d01.var(ddof=1) / k if k > 1 else 0.0)
    return float(d10.mean()), float(var)


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
