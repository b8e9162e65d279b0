"""A known, simple glucose-insulin-carbohydrate system to learn from, packed as the lab packs days.

Linear two-compartment kinetics (per minute): insulin s.c. depot -> plasma, carbohydrate gut ->
absorption, and glucose relaxing to a set point, pushed down by plasma insulin above the basal
steady state and up by absorbed carbohydrate. Its true carb ratio is ~20 g/U and its glucose at
steady state falls ~150 mg/dL per extra U/h of basal. Driven by `campaign.dosing_schedule`, with a
little process noise, starting at steady state for the pre-history basal of 0.55 U/h.
"""

from __future__ import annotations

import numpy as np
import pytest

from wetloop.campaign import CampaignSpec, Intervention, Observation, Trajectory, default_spec_path, load_spec
from wetloop.worldmodel._config import torch_threads
from wetloop.worlds.simglucose import TrajectoryWorldModel, WorldModelConfig, dosing_schedule

KA, KE, KC1, KC2 = 1 / 50, 1 / 70, 1 / 20, 1 / 40  # per minute
P, SI, SG, GB, BASAL0 = 0.003, 0.386, 1.36, 140.0, 0.5477


def simulate_day(spec: CampaignSpec, iv: Intervention, seed: int, noise: float = 0.3) -> np.ndarray:
    """True glucose every 3 min (481 points) of the synthetic patient under regimen `iv`."""
    rng = np.random.default_rng(seed)
    sched = dosing_schedule(spec, iv, step_min=1.0)
    i1, i2 = BASAL0 / 60 / KA, BASAL0 / 60 / KE  # steady state of the pre-history
    i2b, c1, c2, g = i2, 0.0, 0.0, GB
    out = [g]
    for minute in range(len(sched.insulin_u)):
        i1, c1 = i1 + sched.insulin_u[minute], c1 + sched.carbs_g[minute]
        ra = KC2 * c2
        i1, i2 = i1 - KA * i1, i2 + KA * i1 - KE * i2
        c1, c2 = c1 - KC1 * c1, c2 + KC1 * c1 - ra
        g = g - P * (g - GB) - SI * (i2 - i2b) + SG * ra + noise * rng.standard_normal()
        g = min(max(g, 10.0), 600.0)
        out.append(g)
    return np.asarray(out)[::3]


def observe(spec: CampaignSpec, iv: Intervention, seed: int, status: str = "ok") -> Observation:
    """One synthetic day as the simglucose lab reports it (3-min grid, per-step insulin and carbs)."""
    glucose = simulate_day(spec, iv, seed)
    sched = dosing_schedule(spec, iv, step_min=3.0)
    times = tuple(3.0 * i for i in range(len(glucose)))
    series = {
        "glucose": tuple(glucose),
        "cgm": tuple(glucose + 2.0),
        "insulin": tuple(np.append(sched.insulin_u, 0.0)),
        "carbs": tuple(np.append(sched.carbs_g, 0.0)),
    }
    return Observation(
        experiment_key=f"synthetic-{iv.key()}-{seed}",
        status=status,
        lab="synthetic",
        trajectory=Trajectory(times_min=times, series=series),
    )


def regimen(basal: float, carb_ratio: float) -> Intervention:
    return Intervention(values={"basal": basal, "carb_ratio": carb_ratio})


TRAIN = [regimen(b, c) for b in (0.3, 0.5, 0.8, 1.1) for c in (12.0, 20.0, 35.0)]


@pytest.fixture(autouse=True)
def one_thread():
    """As the model runs by default: extra torch threads on busy shared cores are many times slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def spec() -> CampaignSpec:
    return load_spec(default_spec_path())


@pytest.fixture(scope="session")
def train_data(spec: CampaignSpec) -> list[tuple[Intervention, Observation]]:
    return [(iv, observe(spec, iv, seed=i)) for i, iv in enumerate(TRAIN)]


@pytest.fixture(scope="session")
def fast_config() -> WorldModelConfig:
    return WorldModelConfig(members=5, hidden=64, layers=2, epochs=60, min_steps=800, particles=8, seed=3)


@pytest.fixture(scope="session")
def fitted(spec, train_data, fast_config) -> TrajectoryWorldModel:
    model = TrajectoryWorldModel(spec, fast_config)
    model.fit(train_data)
    return model
