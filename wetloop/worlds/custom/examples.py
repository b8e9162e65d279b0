"""Two small published textbook models, written as the functions a scientist would point a custom spec at.

- `combination_response`: two drugs on a cell line, each with a Hill (sigmoid Emax) concentration-
  response, combined by Bliss independence; a toxicity readout with its own Hill curve. Scalar readouts.
- `oral_dosing`: the one-compartment pharmacokinetic model with first-order absorption (the Bateman
  function), repeated oral doses superposed; a time course of plasma concentration.

They are here so the README's "Your own experiment" specs and the world conformance test run with
no code of the user's; a real campaign points `world_options.function` at its own simulator.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["combination_response", "oral_dosing"]


def _hill(c: float, ec50: float, n: float) -> float:
    return c**n / (ec50**n + c**n) if c > 0 else 0.0


def combination_response(values: dict, seed: int = 0) -> dict[str, float]:
    """Kill fraction of a two-drug combination (Bliss independence of two Hill curves) and toxicity,
    with 2% measurement noise. values: `dose_a`, `dose_b` (uM), optional `schedule` ("together",
    "sequential": sequential dosing halves drug B's potency)."""
    rng = np.random.default_rng(seed)
    a, b = float(values["dose_a"]), float(values["dose_b"])
    potency_b = 0.5 if values.get("schedule") == "sequential" else 1.0
    kill = 1.0 - (1.0 - 0.9 * _hill(a, 2.0, 1.5)) * (1.0 - 0.8 * _hill(b * potency_b, 5.0, 2.0))
    toxicity = _hill(a + 0.6 * b, 12.0, 3.0)
    return {
        "kill_fraction": float(np.clip(kill + rng.normal(0, 0.02), 0, 1)),
        "toxicity": float(np.clip(toxicity + rng.normal(0, 0.02), 0, 1)),
    }


def oral_dosing(values: dict) -> dict:
    """Plasma concentration (mg/L) over 48 h after oral doses every `interval_h` hours of `dose_mg`,
    one-compartment model (ka 1.0 /h, ke 0.15 /h, V 40 L, bioavailability 0.9), sampled every 30 min."""
    dose, interval = float(values["dose_mg"]), float(values["interval_h"])
    ka, ke, volume, f = 1.0, 0.15, 40.0, 0.9
    times_h = np.arange(0.0, 48.0 + 1e-9, 0.5)
    conc = np.zeros_like(times_h)
    for t0 in np.arange(0.0, 48.0, interval):
        dt = np.clip(times_h - t0, 0.0, None)
        conc += np.where(times_h >= t0, f * dose * ka / (volume * (ka - ke)) * (np.exp(-ke * dt) - np.exp(-ka * dt)), 0.0)
    return {
        "times_min": (times_h * 60.0).tolist(),
        "series": {"concentration": conc.tolist()},
        "units": {"concentration": "mg/L"},
        "readouts": {"doses": float(math.ceil(48.0 / interval))},
    }
