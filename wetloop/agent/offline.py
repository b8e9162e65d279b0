"""The offline proposer: runs with no LLM, and states its hypotheses in words.

Round 1 (no data): a scrambled Sobol design over the spec's conservative `start` region.
A space with a categorical variable (a gene to knock out) is handed to `offline_genes.GeneProposer`.

Later rounds, three kinds of hypotheses:
- exploration: regimens just beyond the safely explored region may do better (Sobol points in that
  region widened by `margin` in the unit cube);
- local optimum: the best safe result so far sits near the optimum (Gaussian moves around the top
  results, shrinking with the round);
- for insulin regimens (variables `basal` and `carb_ratio`), physiological hypotheses read off the best
  day's readouts: post-meal highs call for larger meal boluses (lower carb ratio), lows call for less
  insulin, a high mean calls for more basal insulin.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from wetloop.campaign import CampaignSpec, Intervention, glucose_range

from ._proposal import CandidateDraft, HypothesisDraft, ProposalContext, ProposerReply, safe_history

__all__ = ["OfflineProposer"]


def _to_unit(spec: CampaignSpec, x: Intervention) -> np.ndarray:
    return np.array([v.to_unit(x.values[v.name]) for v in spec.interventions])


def _from_unit(spec: CampaignSpec, u: np.ndarray) -> dict[str, float]:
    u = np.clip(u, 0.0, 1.0)
    return {v.name: v.from_unit(float(ui)) for v, ui in zip(spec.interventions, u)}


class OfflineProposer:
    """Space-filling candidates plus local moves around the best results, with hypotheses in words."""

    name = "offline"

    def __init__(self, margin: float = 0.15, local_scale: float = 0.08) -> None:
        self.margin = margin
        self.local_scale = local_scale

    def propose(self, ctx: ProposalContext) -> ProposerReply:
        if any(v.kind == "categorical" for v in ctx.spec.interventions):  # genes: hypotheses from gene knowledge
            from wetloop.worlds.crispr_screen._proposer import GeneProposer

            return GeneProposer().propose(ctx)
        rng = np.random.default_rng([ctx.seed, ctx.round])
        safe = safe_history(ctx)
        if not safe:
            return ProposerReply(source=self.name, hypotheses=[self._start_design(ctx, rng)])
        n_local = ctx.n_candidates // 3
        hyps = [self._explore(ctx, safe, ctx.n_candidates - 2 * n_local, rng), self._local(ctx, safe, n_local, rng)]
        hyps += self._regimen_hypotheses(ctx, safe, n_local)
        return ProposerReply(source=self.name, hypotheses=[h for h in hyps if h.candidates])

    # -- round 1 -----------------------------------------------------------------------------
    def _start_design(self, ctx: ProposalContext, rng: np.random.Generator) -> HypothesisDraft:
        spec = ctx.spec
        lo = np.array([v.to_unit(v.start_bounds[0]) for v in spec.interventions])
        hi = np.array([v.to_unit(v.start_bounds[1]) for v in spec.interventions])
        region = ", ".join(f"{v.name} {v.start_bounds[0]:g}-{v.start_bounds[1]:g} {v.unit}" for v in spec.interventions)
        return HypothesisDraft(
            statement=(
                f"With no data on this system yet, a space-filling design over the conservative starting "
                f"region ({region}) maps the response without risking an unsafe experiment."
            ),
            candidates=self._sobol(spec, lo, hi, ctx.n_candidates, rng, "space-filling point of the start region"),
        )

    def _sobol(self, spec, lo, hi, n, rng, why) -> list[CandidateDraft]:
        m = int(np.ceil(np.log2(max(n, 2))))  # Sobol' points balance in powers of two; keep the first n
        pts = qmc.Sobol(d=len(lo), scramble=True, seed=rng).random_base2(m)[:n]
        return [CandidateDraft(values=_from_unit(spec, lo + p * (hi - lo)), rationale=why) for p in pts]

    # -- later rounds --------------------------------------------------------------------------
    def _explore(self, ctx, safe, n, rng) -> HypothesisDraft:
        spec = ctx.spec
        units = np.stack([_to_unit(spec, x) for x, _, _ in safe])
        lo = np.clip(units.min(0) - self.margin, 0, 1)
        hi = np.clip(units.max(0) + self.margin, 0, 1)
        region = ", ".join(
            f"{v.name} {v.from_unit(a):.3g}-{v.from_unit(b):.3g} {v.unit}" for v, a, b in zip(spec.interventions, lo, hi)
        )
        best = safe[0][2]
        return HypothesisDraft(
            statement=(
                f"Interventions just beyond the safely explored region ({region}) may beat the best "
                f"{spec.objective.readout} so far ({best:.3g})."
            ),
            candidates=self._sobol(spec, lo, hi, n, rng, "space-filling point of the widened safe region"),
        )

    def _local(self, ctx, safe, n, rng) -> HypothesisDraft:
        spec = ctx.spec
        top = safe[: min(3, len(safe))]
        scale = self.local_scale / np.sqrt(ctx.round)
        drafts = []
        for i in range(n):
            x, _, u = top[i % len(top)]
            step = rng.normal(0.0, scale, size=len(spec.interventions))
            drafts.append(CandidateDraft(values=_from_unit(spec, _to_unit(spec, x) + step), rationale=f"local move around {x.describe(spec)}"))
        best_x, _, best_u = safe[0]
        return HypothesisDraft(
            statement=(
                f"The optimum lies near {best_x.describe(spec)} (best {spec.objective.readout} so far "
                f"{best_u:.3g}); small changes around the best results should do at least as well."
            ),
            candidates=drafts,
        )

    def _regimen_hypotheses(self, ctx, safe, n) -> list[HypothesisDraft]:
        spec = ctx.spec
        if not {"basal", "carb_ratio"} <= set(spec.variable_names) or "max_glucose" not in safe[0][1].readouts:
            return []
        x, obs, _ = safe[0]
        low, high = glucose_range(spec)
        r = obs.readouts
        rules = []
        if r["max_glucose"] > high:
            rules.append((
                f"Post-meal highs (max glucose {r['max_glucose']:.0f} mg/dL on the best day, "
                f"{x.describe(spec)}) cost time in range: larger meal boluses (a lower carb ratio) should help.",
                {"carb_ratio": (0.75, 0.95), "basal": (0.95, 1.05)},
            ))
        if r["min_glucose"] < low + 15:
            rules.append((
                f"Lows (min glucose {r['min_glucose']:.0f} mg/dL on the best day) cost time in range and "
                f"safety margin: less insulin (lower basal or higher carb ratio) should help.",
                {"basal": (0.8, 0.97), "carb_ratio": (1.03, 1.2)},
            ))
        if r["mean_glucose"] > (low + high) / 2 + 20 and r["min_glucose"] > low + 20:
            rules.append((
                f"Glucose runs high all day (mean {r['mean_glucose']:.0f} mg/dL) with room above the low "
                f"limit (min {r['min_glucose']:.0f}): more basal insulin should help.",
                {"basal": (1.05, 1.3), "carb_ratio": (0.95, 1.05)},
            ))
        return [self._scaled(spec, x, factors, statement, n) for statement, factors in rules]

    def _scaled(self, spec, x: Intervention, factors, statement: str, n: int) -> HypothesisDraft:
        grid = np.linspace(0.0, 1.0, max(2, int(np.ceil(np.sqrt(max(n // 2, 1))))))
        drafts = []
        for a in grid:
            for b in grid:
                vals = dict(x.values)
                for (name, (f0, f1)), t in zip(factors.items(), (a, b)):
                    v = spec.variable(name)
                    vals[name] = float(np.clip(x.values[name] * (f0 + t * (f1 - f0)), v.lower, v.upper))
                drafts.append(CandidateDraft(values=vals, rationale="tests: " + statement.split(":")[-1].strip()))
        return HypothesisDraft(statement=statement, candidates=drafts[: max(n // 2, 4)])
