"""Fakes for the planner's tests: a hand-written ensemble world whose every number is predictable.

FakeWorld's glucose, for unit-cube input x = (a, b), member m of M, particle p of P, at every time:

    glucose = 40 + 160 * a  +  (m - (M - 1) / 2) * 20 * b  +  particle_offsets[p]      (mg/dL, flat in time)

so `a` sets the level, `b` sets how much the members disagree (none at b = 0), and the particles
add a small, known aleatoric spread. The test spec's variables are linear on [0, 1], so the unit
cube is the intervention space itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from botorch.models.ensemble import EnsembleModel
from torch import Tensor

from wetloop.campaign import Band, CampaignSpec, Intervention, Observation, Proposal, unsafe_readout_name
from wetloop.worlds.simglucose import glucose_range


def make_spec(batch: int = 3, cost: float = 1.0, seed: int = 0, start_a: tuple[float, float] = (0.2, 1.0)) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "fake-regimen",
            "question": "which a and b keep glucose in range?",
            "world": "fake",
            "world_options": {"glucose_range": [70.0, 180.0]},
            "objective": {"readout": "time_in_range", "direction": "maximize"},
            "interventions": [
                {"name": "a", "unit": "u", "lower": 0.0, "upper": 1.0, "start": list(start_a)},
                {"name": "b", "unit": "v", "lower": 0.0, "upper": 1.0},
            ],
            "series": [{"name": "glucose", "unit": "mg/dL"}],
            "safety": [{"name": "severe hypoglycaemia", "series": "glucose", "below": 54.0, "max_probability": 0.05}],
            "cost": {"per_experiment": cost},
            "budget": {"rounds": 3, "batch": batch},
            "seed": seed,
        }
    )


def proposal(a: float, b: float, note: str = "") -> Proposal:
    return Proposal(intervention=Intervention(values={"a": a, "b": b}), rationale=note)


def a_for_level(level: float) -> float:
    """The `a` whose predicted glucose level (before member and particle offsets) is `level` mg/dL."""
    return (level - 40.0) / 160.0


class FakeEnsemble(EnsembleModel):
    """The fake world's EnsembleModel: X (..., n, 2) -> glucose (..., M * P, n, T), member-major."""

    def __init__(self, members: int = 5, particle_offsets: Sequence[float] = (-1.5, -0.5, 0.5, 1.5), times: int = 5):
        super().__init__()
        self.members, self.particles = members, len(particle_offsets)
        self.times_min = tuple(60.0 * i for i in range(times))
        self.particle_offsets = torch.tensor(particle_offsets, dtype=torch.float64)
        self._num_outputs = times
        self.calls = 0

    def posterior(self, X: Tensor, *args, **kwargs):
        self.calls += 1  # rollouts the planner asked for (bands use forward directly and are not counted)
        return super().posterior(X, *args, **kwargs)

    def forward(self, X: Tensor) -> Tensor:
        a, b = X[..., 0].double().unsqueeze(-2), X[..., 1].double().unsqueeze(-2)  # (..., 1, n)
        member = torch.arange(self.members, dtype=torch.float64) - (self.members - 1) / 2
        member_of_sample = member.repeat_interleave(self.particles)[:, None]  # (S, 1): member-major
        particle_of_sample = self.particle_offsets.repeat(self.members)[:, None]  # (S, 1)
        level = 40 + 160 * a + member_of_sample * 20.0 * b + particle_of_sample  # (..., S, n)
        return level.unsqueeze(-1).expand(*level.shape, len(self.times_min)).to(X.dtype)


class FakeOutcome:
    """Readouts of glucose samples (..., T) -> (...), with campaign.glucose_readouts' meaning."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec, self.range = spec, glucose_range(spec)

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        low, high = self.range
        out = {
            "time_in_range": ((samples >= low) & (samples <= high)).to(samples.dtype).mean(-1),
            "min_glucose": samples.amin(-1),
            "mean_glucose": samples.mean(-1),
            "max_glucose": samples.amax(-1),
        }
        for limit in self.spec.safety:  # event readouts of below-only glucose limits; the planner derives the rest
            if limit.series == "glucose" and limit.above is None:
                out[unsafe_readout_name(limit)] = (samples < limit.below).any(-1).to(samples.dtype)
        return out


class FakeWorld:
    """A WorldLike over FakeEnsemble; counts how often the planner asks for bands."""

    def __init__(self, spec: CampaignSpec, model: EnsembleModel | None = None, dtype: torch.dtype = torch.float64):
        self.spec, self.dtype = spec, dtype
        self.model = model if model is not None else FakeEnsemble()
        self.outcome = FakeOutcome(spec)
        self.version = "fake-v1"
        self.band_calls = 0

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        rows = [[v.to_unit(x.values[v.name]) for v in self.spec.interventions] for x in interventions]
        return torch.tensor(rows, dtype=self.dtype).reshape(len(rows), len(self.spec.interventions))

    def botorch_model(self) -> EnsembleModel:
        return self.model

    def predict_band(self, intervention: Intervention, level: float = 0.9) -> Band:
        self.band_calls += 1
        with torch.no_grad():
            samples = self.model.forward(self.encode([intervention]))[:, 0, :].double()  # (S, T)
        lo, med, hi = (samples.quantile(p, dim=0).tolist() for p in ((1 - level) / 2, 0.5, (1 + level) / 2))
        return Band(
            series="glucose", level=level, times_min=self.model.times_min, lower=tuple(lo), median=tuple(med), upper=tuple(hi)
        )


def observed(intervention: Intervention, time_in_range: float, unsafe: float = 0.0) -> tuple[Intervention, Observation]:
    """A history entry: the intervention and an 'ok' observation with the given readouts."""
    readouts = {"time_in_range": time_in_range, "below_54_glucose": unsafe}
    return intervention, Observation(experiment_key=intervention.key(), status="ok", readouts=readouts)


# -- a scalar world with every kind of variable ------------------------------------------------------


def make_mixed_spec(batch: int = 2, per_item: float = 0.0, seed: int = 0) -> CampaignSpec:
    """An integer dose, a categorical medium, a set of clamped genes; two lab-reported readouts."""
    return CampaignSpec.model_validate(
        {
            "name": "fake-mixed",
            "question": "which dose, medium and clamps give the most viable cells?",
            "world": "fake",
            "objective": {"readout": "viability", "direction": "maximize"},
            "interventions": [
                {"name": "dose", "kind": "integer", "unit": "uM", "lower": 0, "upper": 10, "start": [0, 6]},
                {"name": "medium", "kind": "categorical", "choices": ["rich", "lean", "salt"]},
                {"name": "clamp", "kind": "set", "items": ["g1", "g2", "g3"], "levels": ["ko", "oe"], "max_items": 2},
            ],
            "readouts": [{"name": "viability"}, {"name": "toxicity", "unit": "AU"}],
            "safety": [{"name": "toxic", "readout": "toxicity", "above": 0.8, "max_probability": 0.1}],
            "cost": {"per_experiment": 1.0, "per_item": {"clamp": per_item} if per_item else {}},
            "budget": {"rounds": 3, "batch": batch},
            "seed": seed,
        }
    )


def mixed(dose: int, medium: str = "rich", clamp: dict[str, str] | None = None) -> Proposal:
    return Proposal(intervention=Intervention(values={"dose": float(dose), "medium": medium, "clamp": clamp or {}}))


class FakeScalarEnsemble(EnsembleModel):
    """X (..., n, 10) encoded as the mixed spec encodes -> readouts (..., M * P, n, 2), member-major.

    viability = 0.3 + 0.4 * dose / 10 + 0.1 * [medium is rich] + (m - (M - 1) / 2) * 0.05 * clamped + particle
    toxicity  = dose / 10 (every member agrees)

    so the members disagree about viability only by how many genes are clamped (k: +-0.1 k, +-0.05 k).
    """

    def __init__(self, members: int = 5, particle_offsets: Sequence[float] = (-0.002, 0.002)) -> None:
        super().__init__()
        self.members, self.particles = members, len(particle_offsets)
        self.particle_offsets = torch.tensor(particle_offsets, dtype=torch.float64)
        self._num_outputs = 2

    def forward(self, X: Tensor) -> Tensor:
        X = X.double()
        dose, rich, clamped = X[..., 0].unsqueeze(-2), X[..., 1].unsqueeze(-2), X[..., 4:].sum(-1).unsqueeze(-2)
        member = (torch.arange(self.members, dtype=torch.float64) - (self.members - 1) / 2).repeat_interleave(self.particles)
        particle = self.particle_offsets.repeat(self.members)
        viability = 0.3 + 0.4 * dose + 0.1 * rich + member[:, None] * 0.05 * clamped + particle[:, None]  # (..., S, n)
        toxicity = dose.expand_as(viability)
        return torch.stack([viability, toxicity], dim=-1)


class ScalarOutcome:
    """Readouts of scalar samples (..., 2) -> (...): viability and toxicity, no event readouts."""

    def readouts(self, samples: Tensor) -> dict[str, Tensor]:
        return {"viability": samples[..., 0], "toxicity": samples[..., 1]}


class FakeScalarWorld:
    """A WorldLike with one-hot and set-indicator inputs, scalar samples, and no predict_band at all."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec, self.model, self.outcome, self.version = spec, FakeScalarEnsemble(), ScalarOutcome(), "scalar-v1"

    def encode(self, interventions: Sequence[Intervention]) -> Tensor:
        rows = [[u for v in self.spec.interventions for u in v.encode(x.values[v.name])] for x in interventions]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), sum(v.width for v in self.spec.interventions))

    def botorch_model(self) -> EnsembleModel:
        return self.model
