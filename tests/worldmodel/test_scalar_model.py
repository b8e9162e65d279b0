"""The scalar world model (ensemble and GP) on a synthetic mixed-variable assay it must learn.

Ground truth: a Branin function of two continuous variables (one on a log scale), plus an offset
per choice of a categorical, plus an effect per gene of a knockout/overexpression cocktail, plus
noise; a second readout is a logistic 'toxicity' of the same inputs, with a safety limit on it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wetloop.campaign import CampaignSpec, Intervention, Observation, unsafe_readout_name
from wetloop.worldmodel import (
    ModelFileError,
    NotFittedError,
    NoTrainingData,
    ScalarModelConfig,
    ScalarWorldModel,
    WorldModelError,
)

SPEC = CampaignSpec.model_validate(
    {
        "name": "assay",
        "question": "which conditions give the best yield?",
        "world": "generic",
        "objective": {"readout": "yield", "direction": "maximize"},
        "interventions": [
            {"name": "temp", "lower": 0.0, "upper": 1.0},
            {"name": "dose", "lower": 0.1, "upper": 10.0, "scale": "log"},
            {"name": "medium", "kind": "categorical", "choices": ["a", "b", "c"]},
            {"name": "edit", "kind": "set", "items": ["g1", "g2", "g3"], "levels": ["ko", "oe"], "max_items": 2},
        ],
        "readouts": [{"name": "yield"}, {"name": "toxicity"}],
        "safety": [{"name": "toxic", "readout": "toxicity", "above": 0.8, "max_probability": 0.1}],
        "budget": {"rounds": 3, "batch": 4},
    }
)
MEDIUM = {"a": 0.0, "b": 15.0, "c": -10.0}
GENE = {("g1", "ko"): 10.0, ("g1", "oe"): -5.0, ("g2", "ko"): -8.0, ("g2", "oe"): 6.0, ("g3", "ko"): 0.0, ("g3", "oe"): 3.0}
FAST = ScalarModelConfig(min_steps=600)


def truth(values: dict) -> tuple[float, float]:
    """Noise-free (yield, toxicity) of one intervention."""
    x1 = 15 * values["temp"] - 5
    x2 = 15 * (math.log(values["dose"] / 0.1) / math.log(100.0))
    branin = (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    y = -branin + MEDIUM[values["medium"]] + sum(GENE[(g, lv)] for g, lv in values["edit"].items())
    tox = 1 / (1 + math.exp(-(4 * values["temp"] - 2 + (values["medium"] == "c") * 2)))
    return y, tox


def random_interventions(n: int, seed: int) -> list[Intervention]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        genes = rng.choice(["g1", "g2", "g3"], size=rng.integers(0, 3), replace=False)
        out.append(
            Intervention(
                values={
                    "temp": float(rng.uniform()),
                    "dose": float(10 ** rng.uniform(-1, 1)),
                    "medium": str(rng.choice(["a", "b", "c"])),
                    "edit": {str(g): str(rng.choice(["ko", "oe"])) for g in genes},
                }
            )
        )
    return out


def history(n: int, seed: int, noise: float = 2.0) -> list[tuple[Intervention, Observation]]:
    rng = np.random.default_rng(seed + 1000)
    out = []
    for i, iv in enumerate(random_interventions(n, seed)):
        y, tox = truth(iv.values)
        readouts = {"yield": y + noise * rng.standard_normal(), "toxicity": tox + 0.02 * rng.standard_normal()}
        out.append((iv, Observation(experiment_key=f"e{i}", status="ok", readouts=readouts)))
    return out


def rmse(model: ScalarWorldModel, test: list[tuple[Intervention, Observation]]) -> float:
    mean = model.predict([iv for iv, _ in test])["yield"][:, 0]
    true = torch.tensor([truth(iv.values)[0] for iv, _ in test], dtype=torch.float64)
    return float(((mean - true) ** 2).mean().sqrt())


@pytest.fixture(scope="module")
def fitted() -> ScalarWorldModel:
    model = ScalarWorldModel(SPEC, SPEC.readouts, config=FAST)
    model.fit(history(120, seed=1))
    return model


def test_error_falls_with_data_and_beats_the_mean() -> None:
    test = history(60, seed=99)
    spread = float(np.std([truth(iv.values)[0] for iv, _ in test]))
    errors = []
    for n in (15, 120):
        model = ScalarWorldModel(SPEC, SPEC.readouts, config=FAST)
        model.fit(history(n, seed=1))
        errors.append(rmse(model, test))
    assert errors[1] < errors[0]
    assert errors[1] < 0.7 * spread  # a Branin valley is hard for an MLP on 120 points; the GP test asks more


def test_interval_coverage_is_reasonable(fitted: ScalarWorldModel) -> None:
    test = history(80, seed=7)
    draws = fitted.sample([iv for iv, _ in test])[..., fitted.outputs.index("yield")]  # (n, S)
    lo, hi = torch.quantile(draws, torch.tensor([0.05, 0.95], dtype=torch.float64), dim=1)
    observed = torch.tensor([obs.readouts["yield"] for _, obs in test], dtype=torch.float64)
    coverage = float(((observed >= lo) & (observed <= hi)).double().mean())
    assert 0.6 <= coverage <= 1.0


def test_posterior_shape_and_outcome_readouts(fitted: ScalarWorldModel) -> None:
    ivs = [iv for iv, _ in history(6, seed=3)]
    model = fitted.botorch_model()
    X = fitted.encode(ivs)
    assert X.dtype == torch.float64 and X.shape == (6, 1 + 1 + 3 + 3 * 2)
    values = model.posterior(X.view(2, 3, -1)).values
    assert values.shape == (2, model.members * model.particles, 3, 2) and values.dtype == torch.float64
    readouts = fitted.outcome.readouts(values)
    event = unsafe_readout_name(SPEC.safety[0])
    tox = readouts["toxicity"]
    assert set(readouts) == {"yield", "toxicity", event} == set(fitted.readout_names)
    assert torch.equal(readouts[event], (tox > 0.8).double())
    assert torch.equal(model.posterior(X.view(2, 3, -1)).values, values)  # seeded: a ranking is reproducible


def test_save_load_predicts_identically(fitted: ScalarWorldModel, tmp_path) -> None:
    X = fitted.encode([iv for iv, _ in history(5, seed=4)])
    path = fitted.save(tmp_path / "m.pt")
    loaded = ScalarWorldModel.load(path, SPEC, SPEC.readouts)
    assert loaded.version == fitted.version and loaded.outputs == fitted.outputs
    assert torch.equal(loaded.botorch_model()(X), fitted.botorch_model()(X))
    other = SPEC.with_overrides(interventions=[v.model_dump() for v in SPEC.interventions[:3]])
    with pytest.raises(ModelFileError, match="another campaign"):
        ScalarWorldModel.load(path, other, SPEC.readouts)


def test_fit_is_deterministic() -> None:
    data = history(20, seed=5)
    a, b = (ScalarWorldModel(SPEC, SPEC.readouts, config=ScalarModelConfig(min_steps=100)) for _ in range(2))
    assert a.fit(data).version == b.fit(data).version


def test_gp_family_is_consumed_like_the_ensemble(tmp_path) -> None:
    data = history(30, seed=2)
    gp = ScalarWorldModel(SPEC, SPEC.readouts, kind="gp", config=ScalarModelConfig(gp_members=8, gp_particles=4))
    report = gp.fit(data)
    assert "gp" in report.summary()
    X = gp.encode([iv for iv, _ in history(4, seed=8)])
    model = gp.botorch_model()
    values = model.posterior(X[None]).values.detach()
    assert (model.members, model.particles) == (8, 4) and values.shape == (1, 32, 4, 2)
    members = values[0, :, :, 0].view(8, 4, 4).mean(1)  # (members, q): function draws disagree off the data
    assert float(members.std(0).min()) > 0
    assert torch.equal(values, model.posterior(X[None]).values)
    test = history(40, seed=98)
    assert rmse(gp, test) < float(np.std([truth(iv.values)[0] for iv, _ in test]))
    loaded = ScalarWorldModel.load(gp.save(tmp_path / "gp.pt"), SPEC, SPEC.readouts)
    assert loaded.version == gp.version
    assert torch.allclose(loaded.botorch_model()(X), model(X))


def test_bad_inputs_say_what_to_do() -> None:
    model = ScalarWorldModel(SPEC, SPEC.readouts, config=FAST)
    with pytest.raises(NotFittedError):
        model.botorch_model()
    failed = [(iv, Observation(experiment_key="x", status="failed", message="lab down")) for iv, _ in history(2, seed=1)]
    with pytest.raises(NoTrainingData, match="at least one 'ok' result"):
        model.fit(failed)
    free = SPEC.with_overrides(interventions=[{"name": "gene", "kind": "categorical"}])
    with pytest.raises(WorldModelError, match="no `choices`"):
        ScalarWorldModel(free, SPEC.readouts)
    with pytest.raises(WorldModelError, match="lacks variable"):
        model.encode([Intervention(values={"temp": 0.5})])


def test_readouts_reported_by_some_experiments_only_are_dropped() -> None:
    data = history(12, seed=6)
    iv, obs = data[0]
    data[0] = (iv, obs.model_copy(update={"readouts": {"yield": obs.readouts["yield"]}}))
    report = ScalarWorldModel(SPEC, SPEC.readouts, config=ScalarModelConfig(min_steps=50)).fit(data)
    assert report.readouts == ("yield",) and report.dropped == ("toxicity",)
    assert "toxicity" in report.summary()
