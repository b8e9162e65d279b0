"""Flow matching world model of a cocktail's population outcome: fate shares and each gene's mean trajectory.

A cell is its time course at a few time points (`points` of the lab's recorded times, genes x points
values; expression levels share one scale, about 0 to 1, so they are not standardised). A velocity
field v(x, s, c), a small MLP of the state x, the flow time s in [0, 1] and the cocktail's clamp
indicators c (one per (gene, level): the additive model's features), moves the control population
(the cells of the empty cocktail) to each cocktail's population. A cocktail never seen is predicted
from its indicators, that is from the parts it shares with the cocktails seen.

Training is conditional flow matching with exact optimal-transport pairs (Lipman et al. 2023; Tong et
al. 2024, torchcfm's `ExactOptimalTransportConditionalFlowMatcher`): each treated cell is paired with
a control cell by the plan minimising the total squared distance (between two equal-size populations
with uniform weights the optimal plan is a permutation: scipy's `linear_sum_assignment`); a point of
the straight path between them, x_s = (1 - s) x0 + s x1 + sigma * eps, is regressed on x1 - x0. The
pairs are formed once per cocktail over whole populations rather than per minibatch.

torchcfm itself is not a dependency: its release declares torchdyn, which requires torchvision,
pytorch-lightning and ipykernel (a CUDA build of torch through torchvision); the objective above is
its few lines, and scipy (a dependency already) gives the exact plan that torchcfm takes from POT.

Prediction integrates the field (midpoint rule, `ode_steps` fixed steps) from the control cells; each
predicted cell's fate is read off its final state with the lab's marker rule (`fates_of`), and the
mean over predicted cells is each gene's trajectory. Ensemble: `members` fields with their own seeds,
the first fitted to every cocktail seen, the others each to a bootstrap sample of them. Each of these
predicts the cocktails its sample left out (out of bag), and their error against the shares observed
(per fate, root mean square) is the model's error on a cocktail it has not seen, the observation's
sampling noise included. `share_samples` adds that error to each member's shares (normal draws,
renormalised), so its interval is where an experiment's observed shares should fall; with no
out-of-bag cocktail (one member) it adds one experiment's sampling noise alone (multinomial draws).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from wetloop.worldmodel import torch_threads

from ._experiment import fate_shares
from ._network import Network
from ._parts import parts_features

__all__ = ["FlowConfig", "FlowModel", "FlowPrediction", "as_shares", "time_points"]


def time_points(recorded: int, points: int) -> np.ndarray:
    """Indices of `points` evenly spaced times among `recorded` ones, the first and last included."""
    if recorded < 1 or points < 1:
        raise ValueError(f"need at least one recorded time and one point, got {recorded} and {points}")
    return np.unique(np.linspace(0, recorded - 1, min(points, recorded)).round().astype(int))


def as_shares(values: np.ndarray) -> np.ndarray:
    """Values over the fates (last axis) clipped to [0, 1] and renormalised to sum to 1 (uniform where all are 0)."""
    s = np.clip(values, 0.0, 1.0)
    total = s.sum(-1, keepdims=True)
    return np.where(total > 0, s / np.where(total > 0, total, 1.0), 1.0 / s.shape[-1])


@dataclass(frozen=True)
class FlowConfig:
    """The flow model's sizes. `points`: time points per cell; `max_cells`: cells per population used
    in training; `sigma`: the width of the probability path; `threads`: torch threads while fitting
    and predicting (one: the field is small, and more only contend on a shared machine)."""

    members: int = 4
    hidden: int = 192
    layers: int = 3
    steps: int = 1000
    batch: int = 512
    lr: float = 3e-3
    sigma: float = 0.3
    ode_steps: int = 4
    points: int = 11
    max_cells: int = 200
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class FlowPrediction:
    """Per member m and cocktail i: `shares` (M, n, fates) and `trajectories` (M, n, points, genes),
    from `cells` predicted cells each; `error_sd` (fates,): the out-of-bag error of the shares, if any."""

    shares: np.ndarray
    trajectories: np.ndarray
    cells: int
    error_sd: np.ndarray | None = None

    def share_samples(self, draws: int, cells: int, seed: int = 0) -> np.ndarray:
        """(M * draws, n, fates): each member's shares plus `draws` draws of the out-of-bag error, or
        without one, seen through `draws` experiments of `cells` cells."""
        if self.error_sd is None:
            return experiment_draws(self.shares, draws, cells, seed)
        rng = np.random.default_rng(seed)
        noisy = self.shares[None] + self.error_sd * rng.standard_normal((draws, *self.shares.shape))
        return as_shares(noisy).reshape(-1, *self.shares.shape[1:])


def experiment_draws(shares: np.ndarray, draws: int, cells: int, seed: int = 0) -> np.ndarray:
    """(draws * M, n, fates): each member's shares (M, n, fates) seen through `draws` experiments of `cells` cells."""
    p = np.clip(shares, 0.0, None)
    p = p / p.sum(-1, keepdims=True)
    counts = np.random.default_rng(seed).multinomial(cells, p, size=(draws, *p.shape[:-1]))  # (draws, M, n, fates)
    return (counts / cells).reshape(-1, *p.shape[1:])


def _field(dim: int, cond: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = dim + 1 + cond
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    mods.append(nn.Linear(width, dim))
    return nn.Sequential(*mods)


def ot_pairs(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of the exact optimal-transport plan between two equal-size uniform populations
    under the squared Euclidean cost: a permutation, the assignment of least total cost."""
    if len(source) != len(target):
        raise ValueError(f"OT pairs need populations of one size, got {len(source)} and {len(target)}")
    cost = ((source[:, None, :] - target[None, :, :]) ** 2).sum(-1)
    return linear_sum_assignment(cost)


class FlowModel:
    """Conditional flow matching from the control population to each cocktail's (see the module)."""

    def __init__(
        self, items: Sequence[str], levels: Sequence[str], net: Network, threshold: float, config: FlowConfig | None = None
    ) -> None:
        self.items, self.levels, self.net, self.threshold = tuple(items), tuple(levels), net, threshold
        self.config = config or FlowConfig()
        self.fields: list[nn.Sequential] = []
        self.control: np.ndarray | None = None  # (cells, points * genes)
        self.picked: np.ndarray | None = None  # indices of the time points used among those recorded
        self.error_sd: np.ndarray | None = None  # (fates,): out-of-bag error of the shares
        self.fit_seconds = 0.0

    def features(self, cocktails: Sequence[dict[str, str]]) -> np.ndarray:
        return parts_features(cocktails, self.items, self.levels, pairs=False)

    def _cells(self, course: np.ndarray) -> np.ndarray:
        """A population's time course (cells, recorded times, genes) as (cells, points * genes)."""
        course = np.asarray(course, dtype=np.float32)
        if course.ndim != 3 or course.shape[2] != self.net.dim:
            raise ValueError(
                f"a time course must be (cells, times, genes) with {self.net.dim} genes (AnnData obsm['time_course']), "
                f"got shape {course.shape}"
            )
        assert self.picked is not None
        return course[:, self.picked].reshape(len(course), -1)

    def fit(self, cocktails: Sequence[dict[str, str]], courses: Sequence[np.ndarray]) -> FlowModel:
        """Fit to each cocktail's population time course (cells, times, genes); the empty cocktail,
        the untreated cells, must be among them: it is where every flow starts."""
        cfg = self.config
        if len(cocktails) != len(courses):
            raise ValueError(f"{len(cocktails)} cocktails but {len(courses)} time courses")
        if {} not in list(cocktails):
            raise ValueError("the flow model starts from the untreated cells: observe the empty cocktail first")
        times = {np.shape(c)[1] if np.ndim(c) == 3 else -1 for c in courses}
        if len(times) != 1 or -1 in times:
            raise ValueError(f"every time course must be (cells, times, genes) with the same times, got {sorted(times)}")
        self.picked = time_points(times.pop(), cfg.points)
        populations = [self._cells(c) for c in courses]
        self.control = populations[list(cocktails).index({})]
        conds = self.features(cocktails).astype(np.float32)
        observed = np.stack([self._shares(p[None]) for p in populations])[:, 0]
        start = time.perf_counter()
        errors = []
        with torch_threads(cfg.threads):
            self.fields = []
            for m in range(cfg.members):
                field, chosen = self._fit_member(m, populations, conds)
                self.fields.append(field)
                oob = np.setdiff1d(np.arange(len(populations)), chosen)
                if len(oob):
                    shares, _ = self._outcome(field, self.control, torch.from_numpy(conds[oob]))
                    errors.append(shares - observed[oob])
        self.error_sd = np.sqrt(np.mean(np.concatenate(errors) ** 2, 0)) if errors else None
        self.fit_seconds = time.perf_counter() - start
        return self

    def _shares(self, cells: np.ndarray) -> np.ndarray:
        """Fate shares (n, fates) of populations (n, cells, points * genes), read off their final states."""
        genes, (n, k) = self.net.dim, cells.shape[:2]
        return fate_shares(cells[:, :, -genes:].reshape(-1, genes).astype(float), n, k, self.threshold)

    def _fit_member(self, member: int, populations: list[np.ndarray], conds: np.ndarray) -> tuple[nn.Sequential, np.ndarray]:
        """A field and the cocktails (indices) it was fitted to."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, member])
        assert self.control is not None
        chosen = rng.integers(len(populations), size=len(populations)) if member else np.arange(len(populations))
        src, dst, cond = [], [], []
        for k in chosen:  # member 0 sees every cocktail once, the others a bootstrap sample
            m = min(len(self.control), len(populations[k]), cfg.max_cells)
            x0 = self.control[rng.choice(len(self.control), m, replace=False)]
            x1 = populations[k][rng.choice(len(populations[k]), m, replace=False)]
            i, j = ot_pairs(x0, x1)
            src.append(x0[i])
            dst.append(x1[j])
            cond.append(np.repeat(conds[k][None], m, axis=0))
        x0s, x1s, cs = (torch.from_numpy(np.concatenate(a)) for a in (src, dst, cond))
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            field = _field(x0s.shape[1], cs.shape[1], cfg.hidden, cfg.layers)
        opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
        for _ in range(cfg.steps):
            idx = torch.randint(len(x0s), (cfg.batch,), generator=gen)
            a, b, c = x0s[idx], x1s[idx], cs[idx]
            s = torch.rand(cfg.batch, 1, generator=gen)
            x = (1 - s) * a + s * b + cfg.sigma * torch.randn(a.shape, generator=gen)
            loss = ((field(torch.cat([x, s, c], 1)) - (b - a)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return field.eval(), chosen

    @torch.no_grad()
    def _transport(self, field: nn.Sequential, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Midpoint-rule integration of the field from s = 0 to 1 (x0 (n, cells, D), cond (n, C))."""
        c = cond[:, None, :].expand(-1, x0.shape[1], -1)
        x, h = x0, 1.0 / self.config.ode_steps

        def v(x: torch.Tensor, s: float) -> torch.Tensor:
            return field(torch.cat([x, torch.full((*x.shape[:2], 1), s), c], -1))

        for k in range(self.config.ode_steps):
            s = k * h
            x = x + h * v(x + 0.5 * h * v(x, s), s + 0.5 * h)
        return x

    def predict(self, cocktails: Sequence[dict[str, str]], cells: int | None = None) -> FlowPrediction:
        """Each member's fate shares and mean trajectories for `cocktails`, from `cells` control cells
        (default: all observed; the same cells for every member and cocktail)."""
        if not self.fields or self.control is None or self.picked is None:
            raise RuntimeError("fit the FlowModel before predicting")
        n_cells = len(self.control) if cells is None else cells
        rng = np.random.default_rng([self.config.seed, 7])
        start = self.control[rng.choice(len(self.control), n_cells, replace=n_cells > len(self.control))]
        cond = torch.from_numpy(self.features(cocktails).astype(np.float32))
        with torch_threads(self.config.threads):
            outcomes = [self._outcome(field, start, cond) for field in self.fields]
        return FlowPrediction(
            shares=np.stack([o[0] for o in outcomes]),
            trajectories=np.stack([o[1] for o in outcomes]),
            cells=n_cells,
            error_sd=self.error_sd,
        )

    def _outcome(self, field: nn.Sequential, start: np.ndarray, cond: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One field's fate shares (n, fates) and mean trajectories (n, points, genes) of the cocktails
        of `cond` (n, C), transporting the cells `start` (cells, points * genes)."""
        assert self.picked is not None
        x0 = torch.from_numpy(start)[None].expand(len(cond), -1, -1)
        out = self._transport(field, x0, cond).numpy()
        return self._shares(out), out.mean(1).reshape(len(cond), len(self.picked), self.net.dim)
