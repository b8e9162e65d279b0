"""The series world model on a small pharmacokinetic/pharmacodynamic ODE it must learn.

Ground truth (integrated by scipy's solve_ivp): a dose infused at a constant rate over `duration`
minutes into plasma, cleared first-order, and a biomarker with turnover whose loss is stimulated by
the plasma concentration (an indirect-response model). Measurements carry 3% multiplicative noise.
The world's `inputs` give the infusion rate per interval; the model must learn the dynamics from it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from wetloop.campaign import (
    CampaignSpec,
    Intervention,
    Observation,
    Trajectory,
    event_happened,
    readout_value,
    unsafe_readout_name,
)
from wetloop.worldmodel import (
    ModelFileError,
    NoTrainingData,
    ObservationFormatError,
    SampleOutcome,
    SeriesModelConfig,
    SeriesWorldModel,
    WorldModelError,
    series_calibration,
)

GRID = np.arange(0.0, 481.0, 20.0)  # 25 times, minutes
KE, KIN, KOUT, S = 1 / 90, 1 / 60, 1 / 60, 0.4
SPEC = CampaignSpec.model_validate(
    {
        "name": "pkpd",
        "question": "which regimen suppresses the marker safely?",
        "world": "generic",
        "objective": {"readout": "suppression", "direction": "maximize"},
        "interventions": [{"name": "dose", "lower": 0.0, "upper": 10.0}, {"name": "duration", "lower": 30.0, "upper": 240.0}],
        "series": [{"name": "conc"}, {"name": "marker", "upper": 2.0}],
        "readouts": [
            {"name": "suppression", "series": "marker", "stat": "time_below", "threshold": 0.6},
            {"name": "exposure", "series": "conc", "stat": "auc"},
            {"name": "peak", "series": "conc", "stat": "max"},
            {"name": "nadir", "series": "marker", "stat": "min"},
            {"name": "in_band", "series": "marker", "stat": "time_in_range", "low": 0.4, "high": 0.8},
            {"name": "end_marker", "series": "marker", "stat": "final"},
            {"name": "mean_conc", "series": "conc", "stat": "mean"},
            {"name": "purity"},
        ],
        "safety": [
            {"name": "toxic peak", "series": "conc", "above": 4.0, "max_probability": 0.1},
            {"name": "marker crash", "readout": "nadir", "below": 0.2, "max_probability": 0.1},
        ],
        "budget": {"rounds": 3, "batch": 4},
    }
)
FAST = SeriesModelConfig(min_steps=600, epochs=30, particles=8)


def infusion(spec: CampaignSpec, interventions: list[Intervention], times_min: list[float]) -> np.ndarray:
    """The world's inputs: mean infusion rate (dose units per minute) over each interval. Shape (n, K, 1)."""
    t = np.asarray(times_min)
    out = np.zeros((len(interventions), len(t) - 1, 1))
    for i, iv in enumerate(interventions):
        dose, dur = float(iv.values["dose"]), float(iv.values["duration"])
        overlap = np.clip(np.minimum(t[1:], dur) - t[:-1], 0.0, None)
        out[i, :, 0] = dose / dur * overlap / np.diff(t)
    return out


def simulate(iv: Intervention, seed: int, noise: float = 0.03) -> np.ndarray:
    """True (conc, marker) on GRID with multiplicative noise. Shape (T, 2)."""
    dose, dur = float(iv.values["dose"]), float(iv.values["duration"])

    def rhs(t: float, y: np.ndarray) -> list[float]:
        rate = dose / dur if t < dur else 0.0
        return [rate - KE * y[0], KIN - KOUT * (1 + S * y[0]) * y[1]]

    sol = solve_ivp(rhs, (0.0, GRID[-1]), [0.0, 1.0], t_eval=GRID, max_step=5.0, rtol=1e-6)
    rng = np.random.default_rng(seed)
    return sol.y.T * np.exp(noise * rng.standard_normal(sol.y.T.shape))


def regimens(n: int, seed: int) -> list[Intervention]:
    rng = np.random.default_rng(seed)
    return [Intervention(values={"dose": float(rng.uniform(0, 10)), "duration": float(rng.uniform(30, 240))}) for _ in range(n)]


def history(n: int, seed: int) -> list[tuple[Intervention, Observation]]:
    out = []
    for i, iv in enumerate(regimens(n, seed)):
        y = simulate(iv, seed * 1000 + i)
        traj = Trajectory(times_min=tuple(GRID), series={"conc": tuple(y[:, 0]), "marker": tuple(y[:, 1])})
        out.append((iv, Observation(experiment_key=f"e{seed}-{i}", status="ok", trajectory=traj, readouts={"purity": 0.9})))
    return out


def new_model(config: SeriesModelConfig = FAST, inputs=infusion) -> SeriesWorldModel:
    return SeriesWorldModel(SPEC, SPEC.series, SPEC.readouts, inputs=inputs, config=config)


@pytest.fixture(scope="module")
def fitted() -> SeriesWorldModel:
    model = new_model()
    model.fit(history(40, seed=1))
    return model


def test_torch_readouts_equal_the_numpy_reference() -> None:
    times = np.cumsum(np.r_[0.0, np.random.default_rng(0).uniform(5, 30, 11)])  # uneven grid, T = 12
    outcome = SampleOutcome(SPEC, SPEC.readouts, series=("conc", "marker"), times_min=times, direct=("purity",))
    samples = torch.rand(3, 7, 2 * 12 + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 5
    samples[..., 12:24] /= 4  # marker around [0, 1.25]: every threshold is crossed by some samples
    got = outcome.readouts(samples)
    flat = samples.reshape(-1, samples.shape[-1]).numpy()
    for r in SPEC.readouts:
        if r.series is not None:
            col = 0 if r.series == "conc" else 12
            want = [readout_value(r, times, row[col : col + 12]) for row in flat]
            assert np.allclose(got[r.name].reshape(-1).numpy(), want, rtol=0, atol=1e-12), r.name
    peak, crash = SPEC.safety
    assert np.array_equal(got[unsafe_readout_name(peak)].reshape(-1).numpy(), [event_happened(peak, row[:12]) for row in flat])
    nadir = got["nadir"].reshape(-1).numpy()
    assert np.array_equal(got[unsafe_readout_name(crash)].reshape(-1).numpy(), [event_happened(crash, [v]) for v in nadir])
    assert torch.equal(got["purity"], samples[..., -1])


def test_open_loop_error_falls_with_data() -> None:
    test = history(12, seed=99)
    errors = []
    for n in (4, 40):
        model = new_model()
        model.fit(history(n, seed=1))
        errors.append(series_calibration(model, test).series["conc"].open_loop_median_mae)
    spread = np.std([obs.trajectory.series["conc"] for _, obs in test])
    assert errors[1] < errors[0] and errors[1] < 0.25 * spread


def test_calibration_beats_persistence_with_reasonable_coverage(fitted: SeriesWorldModel) -> None:
    report = series_calibration(fitted, history(12, seed=98))
    assert "coverage" in report.summary()
    for scores in report.series.values():
        assert 0.6 <= scores.open_loop_coverage <= 1.0
        assert scores.open_loop_crps < scores.initial_persistence_mae
        assert scores.one_step_crps < scores.persistence_mae


def test_planner_view_shapes_and_readouts(fitted: SeriesWorldModel) -> None:
    ivs = regimens(6, seed=5)
    model = fitted.botorch_model()
    values = model.posterior(fitted.encode(ivs).view(3, 2, -1)).values
    s, d = model.members * model.particles, 2 * len(GRID)
    assert values.shape == (3, s, 2, d) and len(model.times_min) == d
    readouts = fitted.outcome.readouts(values)
    assert {"suppression", unsafe_readout_name(SPEC.safety[0]), unsafe_readout_name(SPEC.safety[1])} <= set(readouts)
    assert "purity" not in readouts and fitted.last_fit.ignored_readouts == ("purity",)
    assert torch.equal(model.posterior(fitted.encode(ivs).view(3, 2, -1)).values, values)  # common random numbers
    band = fitted.predict_band(ivs[0], level=0.9)
    assert band.series == "marker" and len(band.median) == len(GRID)
    assert all(lo <= md <= hi for lo, md, hi in zip(band.lower, band.median, band.upper))
    assert float(values[..., : len(GRID)].min()) >= 0.0 and float(values[..., len(GRID) :].max()) <= 2.0  # physical bounds


def test_more_dose_means_more_exposure(fitted: SeriesWorldModel) -> None:
    low, high = (Intervention(values={"dose": d, "duration": 60.0}) for d in (2.0, 8.0))
    exposure = fitted.outcome.readouts(fitted.sample([low, high]))["exposure"].mean(-1)
    assert exposure[1] > 2.5 * exposure[0]


def test_save_load_gives_identical_samples(fitted: SeriesWorldModel, tmp_path) -> None:
    ivs = regimens(3, seed=6)
    path = fitted.save(tmp_path / "s.pt")
    loaded = SeriesWorldModel.load(path, SPEC, SPEC.series, SPEC.readouts, inputs=infusion)
    assert loaded.version == fitted.version
    assert torch.equal(loaded.sample(ivs), fitted.sample(ivs))
    other = SPEC.with_overrides(series=[{"name": "conc"}])
    with pytest.raises(ModelFileError, match="another campaign"):
        SeriesWorldModel.load(path, other, other.series, SPEC.readouts, inputs=infusion)


def test_without_world_inputs_the_encoded_intervention_drives_it() -> None:
    model = new_model(SeriesModelConfig(min_steps=300, epochs=10), inputs=None)
    report = model.fit(history(20, seed=2))
    assert report.log_series == ("conc", "marker") and report.n_transitions == 20 * (len(GRID) - 1)
    low, high = (Intervention(values={"dose": d, "duration": 60.0}) for d in (1.0, 9.0))
    peak = model.outcome.readouts(model.sample([low, high]))["peak"].mean(-1)
    assert peak[1] > peak[0]
    assert new_model(SeriesModelConfig(min_steps=300, epochs=10), inputs=None).fit(history(20, seed=2)).version == report.version


def test_other_grids_are_resampled_onto_the_first() -> None:
    data = history(6, seed=4)
    iv, obs = data[-1]
    fine = np.arange(0.0, 481.0, 10.0)
    y = {k: tuple(np.interp(fine, GRID, v)) for k, v in obs.trajectory.series.items()}
    data[-1] = (iv, obs.model_copy(update={"trajectory": Trajectory(times_min=tuple(fine), series=y)}))
    model = new_model(SeriesModelConfig(min_steps=50, epochs=1))
    assert model.fit(data).n_transitions == 6 * (len(GRID) - 1) and model.times_min == tuple(GRID)


def test_bad_inputs_say_what_to_do() -> None:
    model = new_model()
    iv, obs = history(1, seed=3)[0]
    with pytest.raises(NoTrainingData, match="at least one 'ok' result"):
        model.fit([(iv, obs.model_copy(update={"status": "failed"}))])
    partial = obs.model_copy(
        update={"trajectory": Trajectory(times_min=tuple(GRID), series={"conc": obs.trajectory.series["conc"]})}
    )
    with pytest.raises(ObservationFormatError, match=r"lacks series \['marker'\]"):
        model.fit([(iv, partial)])
    with pytest.raises(WorldModelError, match="inputs"):
        new_model(inputs=lambda spec, ivs, t: np.zeros((len(ivs), 3, 1))).fit([(iv, obs)])
    with pytest.raises(WorldModelError, match="declares no series"):
        SeriesWorldModel(
            SPEC.with_overrides(series=[], readouts=[{"name": "purity"}], safety=[], objective={"readout": "purity"})
        )


def _at_clamp(model: SeriesWorldModel, ivs: list[Intervention]) -> float:
    """Fraction of samples with any state at the rollout clamp."""
    dyn, samples = model._require("test"), model.sample(ivs)  # (n, S, s*T)
    z = dyn.transform.to_state(samples.reshape(*samples.shape[:2], len(model.series), -1).transpose(-1, -2))
    return float(((z <= dyn.z_low + 1e-3) | (z >= dyn.z_high - 1e-3)).any(-1).any(-1).double().mean())


@pytest.mark.parametrize("dynamics", ["mlp", "ode"])
def test_a_first_round_of_four_gives_bounded_calibrated_rollouts(dynamics: str) -> None:
    """Campaign-sized data (4 experiments): no sample at the clamp on the training regimens, open loop
    better than holding the initial value, and P(toxic peak) low where every observed peak was far below."""
    data = history(4, seed=3)
    model = new_model(
        SeriesModelConfig(min_steps=400, epochs=10, rollout_steps=60 if dynamics == "ode" else 150, dynamics=dynamics)
    )
    model.fit(data)
    ivs = [iv for iv, _ in data]
    assert _at_clamp(model, ivs) == 0.0
    report = series_calibration(model, data)
    assert all(s.open_loop_crps < s.initial_persistence_mae for s in report.series.values())
    peaks = [max(obs.trajectory.series["conc"]) for _, obs in data]
    p_toxic = model.outcome.p_unsafe(model.sample(ivs))["toxic peak"]
    assert all(p <= 0.05 for p, peak in zip(p_toxic.tolist(), peaks) if peak < 2.0)


def test_observation_noise_is_not_compounded_over_the_rollout() -> None:
    """A deterministic system measured with noise: `observation` rollouts spread far less at the end than
    `process` ones, whose per-step noise compounds into a random walk."""
    data = history(8, seed=4)
    spread = {}
    for mode in ("observation", "process"):
        model = new_model(SeriesModelConfig(min_steps=400, epochs=10, rollout_steps=0, rollout_noise=mode))
        model.fit(data)
        end = model.outcome.series_values(model.sample([data[0][0]])[0], "marker")[:, -1]
        spread[mode] = float(end.std())
    assert spread["observation"] < 0.7 * spread["process"]


def test_ode_dynamics_save_and_load(tmp_path) -> None:
    model = new_model(SeriesModelConfig(min_steps=100, epochs=2, rollout_steps=20, dynamics="ode", particles=2))
    model.fit(history(3, seed=5))
    loaded = SeriesWorldModel.load(model.save(tmp_path / "ode.pt"), SPEC, SPEC.series, SPEC.readouts, inputs=infusion)
    ivs = regimens(2, seed=7)
    assert loaded.config.dynamics == "ode" and torch.equal(loaded.sample(ivs), model.sample(ivs))


def test_ode_dynamics_without_torchdiffeq_names_the_extra(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torchdiffeq", None)  # what an environment without the extra looks like
    with pytest.raises(WorldModelError, match=r"wetloop\[ode\]"):
        new_model(SeriesModelConfig(dynamics="ode"))
