"""`wetloop bench worldmodel`: the dimensions on held-out data with known answers, the baselines, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from wetloop.agent._bench_dimensions import DIMENSIONS, HeldOut, Predictor, definitions, score
from wetloop.agent.bench_worldmodel import additive, held_out, persistence, print_worldmodel_bench, training_mean
from wetloop.agent.cli import app
from wetloop.campaign import CampaignSpec, Intervention, Observation, Trajectory
from wetloop.worldmodel import Bound, OutcomeSamples, declared_bounds
from wetloop.worlds import World

runner = CliRunner()
TIMES = (0.0, 10.0, 20.0, 30.0, 40.0)


def _spec(safety: bool = True) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "toy",
            "question": "q",
            "world": "custom",
            "interventions": [{"name": "dose", "lower": 0.0, "upper": 1.0}, {"name": "rate", "lower": 0.0, "upper": 1.0}],
            "series": [{"name": "conc", "lower": 0.0}],
            "readouts": [{"name": "final_conc", "series": "conc", "stat": "final"}, {"name": "score"}],
            "objective": {"readout": "final_conc", "direction": "maximize"},
            "safety": [{"name": "too high", "series": "conc", "above": 2.5, "max_probability": 0.1}] if safety else [],
            "budget": {"rounds": 1, "batch": 1},
        }
    )


class ToyWorld(World):
    """A world whose experiments rise linearly from 1 to 1 + dose + rate (an additive truth); its
    intervention starts `start_min` after the first sample."""

    name = "toy"
    start_min = 0.0

    def intervention_start_min(self, spec: CampaignSpec, intervention: Intervention) -> float:
        return self.start_min


def _pair(dose: float, rate: float, i: int) -> tuple[Intervention, Observation]:
    conc = tuple(1.0 + (dose + rate) * t / TIMES[-1] for t in TIMES)
    obs = Observation(
        experiment_key=f"k{i}",
        status="ok",
        trajectory=Trajectory(times_min=TIMES, series={"conc": conc}),
        readouts={"final_conc": conc[-1], "score": dose - rate, "above_2_5_conc": float(max(conc) > 2.5)},
    )
    return Intervention(values={"dose": dose, "rate": rate}), obs


def _data(world: World, spec: CampaignSpec, models: tuple[Predictor, ...] = ()) -> HeldOut:
    rng = np.random.default_rng(0)
    pairs = [_pair(float(d), float(r), i) for i, (d, r) in enumerate(rng.uniform(0, 1, (18, 2)))]
    return held_out(world, spec, pairs[:12], pairs[12:], np.asarray(TIMES), models)


def _truth(data: HeldOut) -> Predictor:
    """A point forecast equal to what the held-out experiments did."""
    series = {"conc": torch.as_tensor(data.test_series[None, :, :, 0])}
    readouts = {r: torch.as_tensor(data.test_readouts[None, :, j]) for j, r in enumerate(data.readouts)}
    return Predictor("truth", OutcomeSamples(readouts, series, TIMES), point=True)


def test_a_forecast_equal_to_the_truth_scores_perfectly() -> None:
    spec = _spec()
    data = _data(ToyWorld(), spec)
    cells = {name: fn(data, _truth(data)) for name, fn in DIMENSIONS.items()}
    assert cells["observational realism"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert cells["state consistency"]["value"] == 0.0
    assert all(v == pytest.approx(0.0) for v in cells["temporal coherence"]["value"].values())
    assert list(cells["temporal coherence"]["value"]) == ["10", "20", "30", "40"]  # 25..100% of the experiment
    assert cells["interventional accuracy"]["value"] == pytest.approx(0.0)
    assert cells["counterfactual validity"]["value"] == {"difference_mae": pytest.approx(0.0), "sign_agreement": 1.0}
    assert cells["calibration"]["value"] == {"coverage90": None, "crps": pytest.approx(0.0)}  # a point has no interval
    assert cells["planning utility"]["value"]["regret"] == pytest.approx(0.0)
    assert cells["planning utility"]["value"]["unsafe_picks"] == 0.0  # it saw which ones cross 2.5


def test_baselines_hold_the_start_average_the_training_set_and_add_effects() -> None:
    spec, world = _spec(), ToyWorld()
    data = _data(world, spec)
    held = persistence(world, spec, data)
    assert held.samples is not None and held.point
    start = data.test_series[:, 0, 0]
    assert held.samples.series["conc"][0].numpy() == pytest.approx(np.repeat(start[:, None], len(TIMES), axis=1))
    assert held.samples.readouts["final_conc"][0].numpy() == pytest.approx(start)  # computed from the held series
    assert "score" not in held.samples.readouts and "lab reports score itself" in str(held.readout("score"))
    world.start_min = 20.0  # the state is held from the intervention's start, observed before it
    late = persistence(world, spec, data).samples
    assert late is not None and late.series["conc"][0, :, :3].numpy() == pytest.approx(data.test_series[:, :3, 0])
    assert late.series["conc"][0, :, 4].numpy() == pytest.approx(data.test_series[:, 2, 0])

    mean = training_mean(data)
    assert mean.samples is not None
    final = data.train_readouts[:, data.readouts.index("final_conc")]
    assert mean.samples.readouts["final_conc"][0].numpy() == pytest.approx(np.full(6, final.mean()))
    assert mean.samples.series["conc"][0, 3].numpy() == pytest.approx(data.train_series[:, :, 0].mean(0))

    add = additive(spec, data)  # the toy truth is additive in dose and rate: it predicts unseen pairs
    assert add.samples is not None and not add.point
    assert add.samples.readouts["final_conc"].mean(0).numpy() == pytest.approx(data.observed("final_conc"), abs=0.02)
    cells = score(data, [held, mean, add])
    assert cells["counterfactual validity"]["training mean"]["value"]["sign_agreement"] == 0.5  # no difference predicted
    assert cells["interventional accuracy"]["additive"]["value"] < cells["interventional accuracy"]["training mean"]["value"]


def test_a_blind_prediction_has_the_regret_of_a_random_pick() -> None:
    spec = _spec(safety=False)
    data = _data(ToyWorld(), spec)
    blind = training_mean(data)
    got = DIMENSIONS["planning utility"](data, blind)["value"]
    y = data.observed("final_conc")
    assert got["menus"] == 200 and got["regret"] > 0
    from itertools import combinations

    size = 3  # menus of half the 6 held-out experiments
    exact = np.mean([max(y[list(m)]) - y[list(m)].mean() for m in combinations(range(6), size)])
    assert got["regret"] == pytest.approx(exact, rel=0.15)  # 200 random menus of the 20 possible


def test_an_exact_mean_is_used_where_a_forecast_gives_one() -> None:
    data = _data(ToyWorld(), _spec(safety=False))
    y = data.observed("final_conc")
    noisy = torch.as_tensor(y)[None] + torch.tensor([[-1.0], [1.5]])  # draws whose mean is off by 0.25
    p = Predictor("exact", OutcomeSamples({"final_conc": noisy}, means={"final_conc": torch.as_tensor(y)}))
    assert DIMENSIONS["interventional accuracy"](data, p)["value"] == pytest.approx(0.0)
    off = Predictor("draws", OutcomeSamples({"final_conc": noisy}))
    assert DIMENSIONS["interventional accuracy"](data, off)["value"] == pytest.approx(0.25)


def test_what_does_not_apply_is_na_with_the_reason() -> None:
    spec = _spec()
    scalar = Predictor("scalar", OutcomeSamples({"final_conc": torch.zeros(4, 6)}), why={"series": "scalar predicts end-points"})
    data = _data(ToyWorld(), spec, (scalar,))
    assert data.realism_readouts == ("final_conc",)  # no model predicts a time course: realism compares readouts
    assert DIMENSIONS["temporal coherence"](data, scalar) == {"na": "scalar predicts end-points"}
    assert DIMENSIONS["observational realism"](data, scalar)["value"] > 0
    nothing = Predictor("none", None, why={"all": "nothing to add"})
    assert all(fn(data, nothing) == {"na": "nothing to add"} for fn in DIMENSIONS.values())
    spec_one = CampaignSpec.model_validate(
        {**spec.model_dump(), "interventions": [{"name": "drug", "kind": "categorical", "choices": ["a", "b"]}]}
    )
    assert "nothing combines" in additive(spec_one, data).why["all"]
    text = definitions(data)
    assert set(text) == set(DIMENSIONS) and "15 pairs" in text["counterfactual validity"]
    assert "conc >= 0" in text["state consistency"]


def test_a_forecast_on_another_grid_is_resampled_and_bounds_are_checked() -> None:
    spec = _spec()
    data = _data(ToyWorld(), spec)
    fine = tuple(np.linspace(0, 40, 9))
    conc = torch.as_tensor(np.stack([np.interp(fine, TIMES, data.test_series[i, :, 0]) for i in range(6)]))[None]
    conc[0, 0, 1] = -1.0  # one outcome dips below zero between the coarse grid's points, at t = 5
    p = Predictor("fine", OutcomeSamples({}, {"conc": conc}, fine))
    on_grid = p.series_on(data)
    assert isinstance(on_grid, torch.Tensor) and on_grid.shape == (1, 6, 5, 1)
    assert on_grid[0, 1:, :, 0].numpy() == pytest.approx(data.test_series[1:, :, 0])
    assert DIMENSIONS["state consistency"](data, p)["value"] == pytest.approx(1 / 6)  # checked on its own grid


def test_worlds_declare_their_constraints() -> None:
    from wetloop.campaign import get_world

    cell = get_world("cell")
    spec = cell.example_spec()
    bounds = {b.target: (b.lower, b.upper) for b in cell.constraints(spec)}
    assert bounds["target_fraction"] == (0.0, 1.0) and bounds["fraction_undecided"] == (0.0, 1.0)
    custom = get_world("custom")
    oral = custom.example_spec()
    assert custom.constraints(oral) == declared_bounds(custom.series(oral), custom.readouts(oral))
    assert Bound("series", "concentration", 0.0) in custom.constraints(oral)


def test_cli_bench_worldmodel_on_a_fast_world(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "bench"
    argv = ["bench", "worldmodel", "--world", "custom", "--quick", "--seed", "3", "--json", "--dir", str(work)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    fig = json.loads((work / "figures.json").read_text())
    (world,) = fig["worlds"]
    assert world["world"] == "custom" and world["experiments"] == {"train": 8, "held_out": 6, "unusable": 0}
    assert world["seed"] == 3 and json.loads(result.stdout)["worlds"][0]["seed"] == 3
    assert world["predictors"] == [*world["models"], "persistence", "training mean", "additive"]
    assert set(world["dimensions"]) == set(DIMENSIONS) == set(world["definitions"])
    for cells in world["dimensions"].values():
        assert set(cells) == set(world["predictors"])
        assert all(("value" in c and "text" in c) or set(c) == {"na"} for c in cells.values())
    model = world["models"][0]
    assert world["dimensions"]["temporal coherence"][model] == {"na": f"{model} predicts end-point readouts, not a time course"}
    assert 0.0 <= world["dimensions"]["calibration"][model]["value"]["coverage90"] <= 1.0
    console = Console(record=True, width=200)
    print_worldmodel_bench(fig, console)
    table = console.export_text()
    assert "counterfactual validity" in table and "n/a [1]" in table and f"[1] {model} predicts end-point" in table


def test_cli_refuses_bad_options_before_running_anything(tmp_path: Path) -> None:
    both = runner.invoke(app, ["bench", "worldmodel", "--world", "custom", "--spec", "x.yaml", "--dir", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output
    family = runner.invoke(app, ["bench", "worldmodel", "--world", "custom", "--model", "lstm", "--dir", str(tmp_path)])
    assert family.exit_code == 2 and "not model families" in family.output
    same = runner.invoke(app, ["bench", "worldmodel", "--world", "cell", "--model", "gp", "--model", "gp"])
    assert "same model" in str(same.exception)
    assert not (tmp_path / "figures.json").exists()


def test_results_without_what_the_world_reports_are_left_out_with_the_reason() -> None:
    from wetloop.agent.bench_worldmodel import usable
    from wetloop.campaign import get_world

    custom = get_world("custom")
    spec = custom.example_spec()
    ok = Observation(
        experiment_key="a", status="ok", trajectory=Trajectory(times_min=(0.0, 1.0), series={"concentration": (0.0, 1.0)})
    )
    failed = Observation(experiment_key="b", status="failed", message="the pump stalled")
    bare = Observation(experiment_key="c", status="ok", readouts={"peak": 1.0})
    x = Intervention(values={"dose_mg": 100.0, "interval_h": 12})
    kept, dropped = usable(custom, spec, [(x, ok), (x, failed), (x, bare)])
    assert kept == [(x, ok)] and dropped == ["the pump stalled", "no series ['concentration']"]


def test_every_world_runs_unless_it_cannot_here(tmp_path: Path, monkeypatch) -> None:
    from wetloop.agent._cli_bench_worldmodel import _specs
    from wetloop.campaign import SpecError, world_names

    monkeypatch.setenv("WETLOOP_DATA_DIR", str(tmp_path))  # no screen data here
    specs, left_out = _specs([], None)
    assert "crispr_screen" in left_out and "no example spec" in left_out["crispr_screen"]
    assert {s.world for s in specs} | set(left_out) == set(world_names())
    with pytest.raises(SpecError, match="no example spec on this machine"):
        _specs(["crispr_screen"], None)
