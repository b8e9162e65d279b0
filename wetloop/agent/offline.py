"""The offline proposer: runs with no LLM, states its hypotheses in words, and handles every kind of
variable a spec declares (continuous on a linear or log scale, integer, categorical, set).

Round 1 (no data): a scrambled Sobol design over the spec's conservative `start` region of the
numeric variables; each categorical variable takes a choice drawn uniformly, each set variable a
random set of items (between `min_items` and `max_items`) at random levels.

Later rounds, three generic hypotheses, plus the world's own:
- exploration: interventions just beyond the safely explored region may do better (Sobol points in
  that region widened by `margin` in the unit cube; other variables drawn at random); it fills the
  menu up to `n_candidates` after the other hypotheses, and has at least a third of it;
- local optimum: the best safe result so far sits near the optimum (Gaussian moves of the numeric
  variables around the top results, shrinking with the round; now and then one categorical switches
  to another choice, or one set adds, removes or swaps an item, or flips an item's level);
- the whole space: anywhere within the hard limits may hold a better optimum (`global_share` of the
  menu, Sobol over the hard-limit box); the world model's predicted safety, in the planner, decides
  which of these may run, so a campaign is not confined to what widens step by step from its start;
- domain hypotheses from the campaign's world (`World.hypotheses`, e.g. the simglucose world's
  insulin rules), found through the world registry; a world the registry does not know adds none.

Every number is clipped to its variable's hard limits (and an integer rounded inside them), so no
candidate is refused for a bound crossed by floating-point rounding. A space with a categorical
variable whose names the world decides (a screen's genes) needs the world's own offline proposer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy.stats import qmc

from wetloop.campaign import CampaignSpec, Intervention, Observation, SpecError, Value, Variable, get_world

from ._proposal import CandidateDraft, HypothesisDraft, ProposalContext, ProposerReply, safe_history

__all__ = ["OfflineProposer", "moved_value", "random_value", "world_hypotheses"]

Safe = list[tuple[Intervention, Observation, float]]
"""Safe results, best first, as `safe_history` gives them: (intervention, observation, utility)."""


class OfflineProposer:
    """Space-filling candidates plus local moves around the best results, with hypotheses in words."""

    name = "offline"

    def __init__(self, margin: float = 0.15, local_scale: float = 0.08, switch: float = 0.3, global_share: float = 0.25) -> None:
        self.margin = margin  # how far beyond the safe region exploration reaches (unit cube)
        self.local_scale = local_scale  # the local moves' step, in the unit cube, at round 1
        self.switch = switch  # how often a local move also changes one categorical or set variable
        self.global_share = global_share  # share of a later round's menu drawn from the whole space

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        """Hypotheses with candidates for round `ctx.round` (see the module docstring)."""
        open_names = [v.name for v in ctx.spec.interventions if v.kind == "categorical" and v.choices is None]
        if open_names:  # only the world knows these names: its own proposer (World.offline_proposer) runs instead
            return ProposerReply(
                source=self.name,
                problems=[
                    f"variable(s) {open_names} take names only world {ctx.spec.world!r} knows; it brings no offline proposer"
                ],
            )
        rng = np.random.default_rng([ctx.seed, ctx.round])
        safe = safe_history(ctx)
        if not safe:
            hyps = [self._start_design(ctx, rng)]
        else:
            n_local = ctx.n_candidates // 3
            n_global = int(ctx.n_candidates * self.global_share) if _numeric(ctx.spec) else 0
            domain = world_hypotheses(ctx, safe, n_local)
            # exploration fills the menu up to n_candidates, so a world without hypotheses gets as many
            n_explore = max(ctx.n_candidates - n_local - n_global - sum(len(h.candidates) for h in domain), n_local)
            hyps = [self._explore(ctx, safe, n_explore, rng), self._local(ctx, safe, n_local, rng)]
            if n_global:  # without numbers, exploration already draws anywhere
                hyps.append(self._global(ctx, n_global, rng))
            hyps += domain
        return ProposerReply(source=self.name, hypotheses=_fresh(ctx, hyps))

    # -- round 1 -----------------------------------------------------------------------------
    def _start_design(self, ctx: ProposalContext, rng: np.random.Generator) -> HypothesisDraft:
        spec, nums = ctx.spec, _numeric(ctx.spec)
        lo = np.array([v.to_unit(v.start_bounds[0]) for v in nums])
        hi = np.array([v.to_unit(v.start_bounds[1]) for v in nums])
        region = _region_words(spec, {v.name: v.start_bounds for v in nums})
        return HypothesisDraft(
            statement=(
                f"With no data on this system yet, a space-filling design over the conservative starting "
                f"region ({region}) maps the response without risking an unsafe experiment."
            ),
            candidates=self._design(spec, lo, hi, ctx.n_candidates, rng, "space-filling point of the start region"),
        )

    def _design(
        self, spec: CampaignSpec, lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator, why: str
    ) -> list[CandidateDraft]:
        """n Sobol points of the numeric box [lo, hi] (unit cube), other variables drawn at random."""
        points = _sobol(len(lo), n, rng)
        return [
            CandidateDraft(values=_values(spec, lo + p * (hi - lo), lambda v: random_value(v, rng)), rationale=why)
            for p in points
        ]

    # -- later rounds --------------------------------------------------------------------------
    def _explore(self, ctx: ProposalContext, safe: Safe, n: int, rng: np.random.Generator) -> HypothesisDraft:
        spec, nums = ctx.spec, _numeric(ctx.spec)
        units = np.stack([_to_unit(spec, x) for x, _, _ in safe])
        lo = np.clip(units.min(0) - self.margin, 0, 1)
        hi = np.clip(units.max(0) + self.margin, 0, 1)
        region = _region_words(spec, {v.name: (v.from_unit(a), v.from_unit(b)) for v, a, b in zip(nums, lo, hi)})
        return HypothesisDraft(
            statement=(
                f"Interventions just beyond the safely explored region ({region}) may beat the best "
                f"{spec.objective.readout} so far ({safe[0][2]:.3g})."
            ),
            candidates=self._design(spec, lo, hi, n, rng, "space-filling point of the widened safe region"),
        )

    def _global(self, ctx: ProposalContext, n: int, rng: np.random.Generator) -> HypothesisDraft:
        """Points anywhere within the hard limits: a world model's predicted safety, not the proposer,
        decides which of them may run, so a campaign is not confined to what widens from its start."""
        spec, nums = ctx.spec, _numeric(ctx.spec)
        lo, hi = np.zeros(len(nums)), np.ones(len(nums))
        return HypothesisDraft(
            statement=(
                "Regions never tested, anywhere within the hard limits, may hold a better optimum than the "
                "neighbourhood of what has run; the world model's predicted safety decides which of them may run."
            ),
            candidates=self._design(spec, lo, hi, n, rng, "space-filling point of the whole space"),
        )

    def _local(self, ctx: ProposalContext, safe: Safe, n: int, rng: np.random.Generator) -> HypothesisDraft:
        spec = ctx.spec
        top = safe[: min(3, len(safe))]
        scale = self.local_scale / np.sqrt(ctx.round)
        drafts = [
            CandidateDraft(values=self._moved(spec, x, scale, rng), rationale=f"local move around {x.describe(spec)}")
            for x, _, _ in (top[i % len(top)] for i in range(n))
        ]
        best_x, _, best_u = safe[0]
        return HypothesisDraft(
            statement=(
                f"The optimum lies near {best_x.describe(spec)} (best {spec.objective.readout} so far "
                f"{best_u:.3g}); small changes around the best results should do at least as well."
            ),
            candidates=drafts,
        )

    def _moved(self, spec: CampaignSpec, x: Intervention, scale: float, rng: np.random.Generator) -> dict[str, Value]:
        """x with a Gaussian step on the numeric variables and, now and then (always when nothing is
        numeric, else the move would be no move), one categorical or set variable changed."""
        nums = _numeric(spec)
        step = _to_unit(spec, x) + rng.normal(0.0, scale, size=len(nums))
        discrete = [v for v in spec.interventions if not v.is_numeric]
        changed = discrete[int(rng.integers(len(discrete)))] if discrete and (not nums or rng.random() < self.switch) else None
        return _values(spec, step, lambda v: moved_value(v, x.values[v.name], rng) if v is changed else _copy(x.values[v.name]))


# -- the world's hypotheses ----------------------------------------------------------------------
def world_hypotheses(ctx: ProposalContext, safe: Safe, n: int) -> list[HypothesisDraft]:
    """The domain hypotheses of the campaign's world (`World.hypotheses`); none when the registry has
    no such world (tests and ad-hoc specs use made-up names) or the world has no such hook."""
    try:
        hook = get_world(ctx.spec.world).hypotheses
    except (SpecError, AttributeError):
        return []
    return list(hook(ctx, safe, n))


def _fresh(ctx: ProposalContext, hyps: Iterable[HypothesisDraft]) -> list[HypothesisDraft]:
    """The hypotheses without repeated candidates (same intervention twice in the reply, or one already
    run): rounding integers and drawing from few choices repeat points; hypotheses left empty go."""
    seen = {x.key() for x, _ in ctx.history}
    out = []
    for h in hyps:
        kept = []
        for c in h.candidates:
            key = Intervention(values=c.values).key()
            if key not in seen:
                seen.add(key)
                kept.append(c)
        if kept:
            out.append(HypothesisDraft(statement=h.statement, candidates=kept))
    return out


# -- values of every kind ------------------------------------------------------------------------
def random_value(var: Variable, rng: np.random.Generator) -> Value:
    """A uniformly drawn choice (categorical), a random set of items at random levels (set), or a
    uniform point of the start region (numeric)."""
    if var.is_numeric:
        lo, hi = var.start_bounds
        return _clip(var, var.from_unit(rng.uniform(var.to_unit(lo), var.to_unit(hi))))
    if var.kind == "categorical":
        return str(rng.choice(list(var.choices or ())))
    items = var.items or ()
    k = int(rng.integers(var.min_items, var.most_items + 1))
    picked = sorted(rng.choice(len(items), size=k, replace=False))
    return {items[i]: var.levels[int(rng.integers(len(var.levels)))] for i in picked}


def moved_value(var: Variable, value: Value, rng: np.random.Generator) -> Value:
    """One small change: another choice (categorical), or one set move (add, remove, swap, flip)."""
    if var.kind == "categorical":
        others = [c for c in var.choices or () if c != value]
        return str(rng.choice(others)) if others else value
    if var.kind == "set":
        return _moved_set(var, dict(value) if isinstance(value, dict) else {}, rng)
    return value


def _moved_set(var: Variable, chosen: dict[str, str], rng: np.random.Generator) -> dict[str, str]:
    """Add an unused item, remove one, swap one for an unused item (same level), or flip one's level,
    whichever the item limits allow, chosen at random."""
    unused, picked = [i for i in var.items or () if i not in chosen], sorted(chosen)
    allowed = {
        "add": len(chosen) < var.most_items and unused,
        "remove": len(chosen) > var.min_items,
        "swap": picked and unused,
        "flip": picked and len(var.levels) > 1,
    }
    moves = [m for m, ok in allowed.items() if ok]
    if not moves:
        return chosen
    move, pick = moves[int(rng.integers(len(moves)))], lambda seq: seq[int(rng.integers(len(seq)))]
    item = pick(picked) if move != "add" else None
    level = chosen.pop(item) if item is not None else pick(var.levels)
    if move in ("add", "swap"):
        chosen[pick(unused)] = level
    elif move == "flip":
        chosen[item] = pick([lv for lv in var.levels if lv != level])  # type: ignore[index]
    return dict(sorted(chosen.items()))


def _numeric(spec: CampaignSpec) -> list[Variable]:
    return [v for v in spec.interventions if v.is_numeric]


def _to_unit(spec: CampaignSpec, x: Intervention) -> np.ndarray:
    """The numeric variables of x on the unit cube, in spec order."""
    return np.array([v.to_unit(x.number(v.name)) for v in _numeric(spec)])


def _values(spec: CampaignSpec, u: np.ndarray, other: Callable[[Variable], Value]) -> dict[str, Value]:
    """Values of every variable: numeric ones from unit coordinates `u` (in spec order), the rest from `other`."""
    coords = iter(np.clip(u, 0.0, 1.0))
    return {v.name: _clip(v, v.from_unit(float(next(coords)))) if v.is_numeric else other(v) for v in spec.interventions}


def _clip(var: Variable, value: float) -> float:
    """`value` inside the hard limits (an integer rounded inside them): a log scale's exp(log(x)) can
    land an ulp outside, and the lab refuses 50.000000000000014 when the limit is 50."""
    lo, hi = var.lower, var.upper
    assert lo is not None and hi is not None, "a numeric variable has lower and upper (the spec checks)"
    value = min(max(float(value), lo), hi)
    return float(round(value)) if var.kind == "integer" else value


def _copy(value: Value) -> Value:
    return dict(value) if isinstance(value, dict) else value


def _sobol(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n scrambled Sobol' points in [0, 1]^d (n rows of nothing when no variable is numeric)."""
    if d == 0:
        return np.zeros((n, 0))
    m = int(np.ceil(np.log2(max(n, 2))))  # Sobol' points balance in powers of two; keep the first n
    return qmc.Sobol(d=d, scramble=True, seed=rng).random_base2(m)[:n]


def _region_words(spec: CampaignSpec, bounds: dict[str, tuple[float, float]]) -> str:
    """A region in words: numeric ranges from `bounds`, and what the other variables range over."""
    parts = []
    for v in spec.interventions:
        if v.name in bounds:
            parts.append(f"{v.name} {v.describe(bounds[v.name][0])} to {v.describe(bounds[v.name][1])}")
        elif v.kind == "categorical":
            parts.append(f"{v.name} any of {', '.join(v.choices or ())}")
        else:
            parts.append(f"{v.name} {v.min_items} to {v.most_items} of {len(v.items or ())} items at random levels")
    return "; ".join(parts)
