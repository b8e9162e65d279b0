"""World `cell`'s models of a cocktail's whole outcome: flow matching, the additive and mean baselines, the bench."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("scanpy")

from typer.testing import CliRunner

from wetloop.campaign import CampaignSpec, load_spec
from wetloop.worlds.cell import FATES, SPECS_DIR, CellOptions, load_network, run_experiment
from wetloop.worlds.cell._baselines import AdditiveOutcome, MeanOutcome
from wetloop.worlds.cell._experiment import fates_of
from wetloop.worlds.cell._flow import FlowConfig, FlowModel, ot_pairs, time_points
from wetloop.worlds.cell._model_eval import compare_models, model_steps, simulate_populations

SMALL = {"cells": 40, "steps": 300, "window": [0, 150], "record_every": 30}
TINY_FLOW = FlowConfig(members=2, hidden=128, steps=400, lr=5e-3, points=6, seed=0)
ITEMS = ("Gata2", "Fli1", "EKLF", "Pu.1")
STRONG = {"Gata2": "oe", "Fli1": "ko"}  # turns the mostly monocyte culture erythroid
TRAIN = [
    {},
    STRONG,
    {"Gata2": "oe"},
    {"Fli1": "ko"},
    {"EKLF": "oe"},
    {"Pu.1": "ko"},
    {"Pu.1": "oe"},
    {"EKLF": "oe", "Pu.1": "ko"},
]


def _tiny_spec() -> CampaignSpec:
    spec = load_spec(SPECS_DIR / "reprogram.yaml")
    data = spec.model_dump(mode="json")
    data["world_options"] = {**data["world_options"], **SMALL}
    data["interventions"][0].update(items=list(ITEMS), max_items=2)
    return CampaignSpec.model_validate(data)


@pytest.fixture(scope="module")
def data() -> dict:
    options = CellOptions(**SMALL)
    courses, shares = simulate_populations(options, TRAIN, seed=0, points=11)
    again = simulate_populations(options, [STRONG, {}], seed=1, points=11)
    model = FlowModel(ITEMS, ("ko", "oe"), load_network(), options.threshold, TINY_FLOW).fit(TRAIN, list(courses))
    return {"options": options, "courses": courses, "shares": shares, "again": again, "model": model}


def test_time_points_keep_the_first_and_last_of_the_lab_times() -> None:
    assert time_points(11, 4).tolist() == [0, 3, 7, 10]
    assert time_points(3, 10).tolist() == [0, 1, 2]  # never more points than recorded
    options = CellOptions(**SMALL)
    lab_steps = np.asarray(run_experiment(options, {}, seed=0).uns["times"]) / 0.02
    assert model_steps(options, 4) == [round(float(lab_steps[i])) for i in time_points(len(lab_steps), 4)]
    assert model_steps(options, 4)[-1] == options.steps - 1
    with pytest.raises(ValueError, match="at least one"):
        time_points(0, 3)


def test_populations_are_the_labs_experiments(data: dict) -> None:
    """Clamped genes hold their level inside the window, and the shares are the final state's fates."""
    options, courses, shares = data["options"], data["courses"], data["shares"]
    net = load_network()
    assert courses.shape == (len(TRAIN), options.cells, 11, net.dim)
    inside = [i for i, s in enumerate(model_steps(options, 11)) if s < options.window[1]]
    strong = courses[TRAIN.index(STRONG)]
    assert np.all(strong[:, inside, net.index("Gata2")] == 1.0) and np.all(strong[:, inside, net.index("Fli1")] == 0.0)
    assert not np.all(strong[:, -1, net.index("Gata2")] == 1.0)  # released after the window
    for k in range(len(TRAIN)):
        fates = fates_of(net, courses[k, :, -1].astype(float), options.threshold)
        assert np.allclose(shares[k], np.bincount(fates, minlength=len(FATES)) / options.cells, atol=1e-6)
    assert shares[TRAIN.index(STRONG), 0] >= 0.9 and shares[0, 0] < 0.5


def test_ot_pairs_are_the_cheapest_permutation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    i, j = ot_pairs(a, b)
    cost = ((a[i] - b[j]) ** 2).sum()
    best = min(((a - b[list(p)]) ** 2).sum() for p in itertools.permutations(range(5)))
    assert sorted(j) == list(range(5)) and cost == pytest.approx(best)
    with pytest.raises(ValueError, match="one size"):
        ot_pairs(a, b[:4])


def test_flow_predicts_every_fate_and_trajectory_of_unseen_cocktails(data: dict) -> None:
    model, options = data["model"], data["options"]
    unseen = [{"Gata2": "oe", "Pu.1": "ko"}, {"Fli1": "oe"}]
    pred = model.predict(unseen)
    m, points, genes = TINY_FLOW.members, TINY_FLOW.points, load_network().dim
    assert pred.shares.shape == (m, 2, len(FATES)) and pred.trajectories.shape == (m, 2, points, genes)
    assert np.allclose(pred.shares.sum(-1), 1.0) and np.all(np.isfinite(pred.trajectories))
    assert not np.allclose(pred.trajectories[0], pred.trajectories[1])  # members differ
    samples = pred.share_samples(draws=3, cells=options.cells)
    assert samples.shape == (3 * m, 2, len(FATES)) and np.allclose(samples.sum(-1), 1.0)
    assert len({tuple(s[0]) for s in samples}) > 1  # an experiment's sampling noise is in the samples
    assert model.fit_seconds > 0


def test_share_samples_carry_the_out_of_bag_error(data: dict) -> None:
    """Member 1 was fitted to a bootstrap sample: its error on the cocktails left out is the flow's
    error_sd, and the share samples spread by it; a single member has none and samples experiments."""
    model, shares, courses = data["model"], data["shares"], data["courses"]
    chosen = np.random.default_rng([TINY_FLOW.seed, 1]).integers(len(TRAIN), size=len(TRAIN))
    oob = np.setdiff1d(np.arange(len(TRAIN)), chosen)
    assert len(oob) > 0
    member1 = model.predict([TRAIN[i] for i in oob]).shares[1]
    assert model.error_sd == pytest.approx(np.sqrt(np.mean((member1 - shares[oob]) ** 2, 0)), abs=1e-6)
    assert model.error_sd.max() > 0
    pred = model.predict([{"Gata2": "oe", "Pu.1": "ko"}])
    samples = pred.share_samples(draws=200, cells=40)
    assert np.allclose(samples.sum(-1), 1.0) and np.all(samples >= 0)
    assert np.all(samples.std(0)[0, model.error_sd > 0.05] > 0.02)
    single = FlowModel(ITEMS, ("ko", "oe"), load_network(), 0.5, replace(TINY_FLOW, members=1)).fit(TRAIN, list(courses))
    assert single.error_sd is None
    counts = single.predict([{}]).share_samples(draws=5, cells=40) * 40
    assert np.allclose(counts, counts.round())  # whole cells of an experiment of 40


def test_flow_follows_the_cocktail_and_beats_the_mean_on_a_strong_one(data: dict) -> None:
    """A new experiment of the strong cocktail (and of the untreated cells): the flow predicts its shares
    and its Gata2 trajectory better than the training mean. A field that ignored the cocktail would
    predict the same population for both. Member 0 is fitted to every cocktail seen (the others to
    bootstrap samples, which may leave the strong one out)."""
    model, shares, courses = data["model"], data["shares"], data["courses"]
    (fresh_courses, fresh) = data["again"]
    pred = model.predict([STRONG, {}])
    flow_shares, flow_traj = pred.shares[0], pred.trajectories[0]
    mean = MeanOutcome().fit(TRAIN, shares).samples([STRONG, {}]).mean(0)
    assert flow_shares[0, 0] > 0.7 and flow_shares[1, 0] < 0.5
    assert np.abs(flow_shares[0] - fresh[0]).sum() < np.abs(mean[0] - fresh[0]).sum() - 0.3
    gata2 = load_network().index("Gata2")
    picked = time_points(11, TINY_FLOW.points)
    truth = fresh_courses[0][:, picked, gata2].mean(0)
    assert np.abs(flow_traj[0, :, gata2] - truth).mean() < np.abs(courses[:, :, picked, gata2].mean((0, 1)) - truth).mean() / 2


def test_flow_refuses_what_it_cannot_fit(data: dict) -> None:
    net, courses = load_network(), data["courses"]
    model = FlowModel(ITEMS, ("ko", "oe"), net, 0.5, TINY_FLOW)
    with pytest.raises(RuntimeError, match="fit the FlowModel"):
        model.predict([{}])
    with pytest.raises(ValueError, match="empty cocktail"):
        model.fit(TRAIN[1:], list(courses[1:]))
    with pytest.raises(ValueError, match="cocktails but"):
        model.fit(TRAIN, list(courses[:3]))
    with pytest.raises(ValueError, match="same times"):
        model.fit(TRAIN[:2], [courses[0], courses[1][:, :5]])
    with pytest.raises(ValueError, match="genes"):
        model.fit(TRAIN[:2], [courses[0][..., :5], courses[1][..., :5]])


def test_additive_outcome_adds_single_effects_for_every_output() -> None:
    items, levels = ("a", "b", "c"), ("ko", "oe")
    effect = {("a", "oe"): np.array([0.5, -0.2]), ("b", "ko"): np.array([-0.3, 0.4]), ("c", "oe"): np.array([0.1, 0.1])}
    base = np.array([0.2, 0.6])
    seen = [{}, {"a": "oe"}, {"b": "ko"}, {"c": "oe"}, {"a": "oe", "c": "oe"}, {"b": "ko", "c": "oe"}]
    y = np.array([base + sum((effect[kv] for kv in c.items()), np.zeros(2)) for c in seen])
    model = AdditiveOutcome(items, levels, members=200, prior_sd=2.0).fit(seen, y)
    unseen = {"a": "oe", "b": "ko"}
    assert np.allclose(model.predict([unseen])[0], base + effect[("a", "oe")] + effect[("b", "ko")], atol=0.02)
    samples = model.samples([unseen, {"a": "ko"}])
    assert samples.shape == (200, 2, 2)
    spread = samples.std(0)
    assert np.all(spread[1] > 3 * spread[0])  # a clamp never seen keeps its prior spread
    with pytest.raises(ValueError, match="one row per cocktail"):
        model.fit(seen, y[:3])


def test_bench_scores_every_fate_and_trajectory_with_floors() -> None:
    fig = compare_models(_tiny_spec(), [6, 9], test=5, repeats=1, models=("flow", "additive", "mean", "parts"), flow=TINY_FLOW)
    assert fig["time_points"] == model_steps(CellOptions(**SMALL), TINY_FLOW.points)
    for size in (6, 9):
        row = fig["sizes"][size]
        assert row["replicate"]["fate_mae"] > 0 and row["replicate"]["traj_rmse"] > 0
        assert row["floor"]["fate_mae"] == pytest.approx(row["replicate"]["fate_mae"] / np.sqrt(2))
        for m in ("flow", "additive", "mean"):
            s = row["models"][m]
            assert 0 < s["fate_mae"] < 1 and 0 <= s["coverage90"] <= 1 and 0 < s["traj_rmse"] < 1, (m, s)
            assert 0 <= s["target_mae"] <= 1 and s["seconds"] > 0
        parts = row["models"]["parts"]
        assert parts["fate_mae"] is None and parts["traj_rmse"] is None and parts["target_mae"] >= 0
    with pytest.raises(ValueError, match="non-empty cocktails"):
        compare_models(_tiny_spec(), [40], test=5, repeats=1)


def test_bench_command_prints_json_and_refuses_bad_input(tmp_path) -> None:
    from wetloop.agent.cli import app

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(json.dumps(_tiny_spec().model_dump(mode="json")))
    runner = CliRunner()
    args = ["bench", "cell-model", str(spec_file), "--train", "5", "--test", "4", "--repeats", "1"]
    out = runner.invoke(app, [*args, "--models", "additive,mean", "--json"])
    assert out.exit_code == 0, out.output
    fig = json.loads(out.stdout[out.stdout.index("{") :])
    assert set(fig["sizes"]["5"]["models"]) == {"additive", "mean"} and fig["sizes"]["5"]["floor"]["traj_rmse"] > 0
    bad = runner.invoke(app, [*args, "--models", "flow,oracle"])
    assert bad.exit_code != 0 and "models must be among" in bad.output
    big = runner.invoke(app, ["bench", "cell-model", str(spec_file), "--train", "30", "--test", "4"])
    assert big.exit_code != 0 and "non-empty cocktails" in big.output
