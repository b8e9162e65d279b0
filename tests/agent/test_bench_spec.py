"""`wetloop bench spec`: every method on the same spec and seeds, and the controls mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from wetloop.agent.bench_spec import bench_spec
from wetloop.campaign import Budget, CampaignStore, load_spec

SPEC = Path(__file__).resolve().parents[2] / "wetloop/worlds/custom/specs/combination.yaml"


@pytest.mark.slow
def test_bench_spec_runs_every_method_on_the_same_budget(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_SCALARMODEL_EPOCHS", "30")
    spec = load_spec(SPEC).with_overrides(budget=Budget(rounds=2, batch=2))
    fig = bench_spec(spec, seeds=1, work_dir=tmp_path, log=lambda _: None)
    assert set(fig["methods"]) == {"ours", "ours_gp", "ours_no_learning", "ours_shuffled_feedback", "random", "ax"}
    assert fig["ax"] == {"rounds_short_of_the_batch": 0}  # Ax was asked again until each round had its batch
    assert all(runs[0]["experiments"] == 4 for runs in fig["methods"].values())
    # without learning the campaign never leaves the start region (doses up to 2 uM): it cannot beat
    # the best answer the dense simulation found in the whole space
    best = fig["best_answer"]
    assert best["points"] == 1024 and best["best_safe"] > fig["methods"]["ours_no_learning"][0]["best_safe"]
    for folder, models in (("prior-0", 0), ("ours-0", 2)):  # one refit a round; the no-learning control none
        with CampaignStore(tmp_path / folder / "store.sqlite") as store:
            assert store.count(store.campaign_ids()[0], "model") == models
    cal = fig["calibration"][0]
    assert set(cal) == {"kill_fraction", "toxicity"} and all(0.0 <= c["coverage90"] <= 1.0 for c in cal.values())


def test_shuffled_feedback_permutes_each_rounds_results_among_its_experiments(tmp_path) -> None:
    """The negative control: the loop learns from answers that belong to other experiments of the same
    round, while the store keeps the true ones (which score the control)."""
    from rich.console import Console

    from wetloop.agent import AgentSettings, Campaign
    from wetloop.agent.graph import history

    spec = load_spec(SPEC).with_overrides(budget=Budget(rounds=2, batch=3))
    settings = AgentSettings(shuffle_feedback=True)
    with Campaign.create(spec, tmp_path / "run", settings=settings, console=Console(quiet=True)) as c:
        assert c.run().done
        ctx = c._context()
        seen = history(ctx)
        obs = c.store.observations(c.campaign_id)
        truth = [(e, obs[e.key]) for e in c.store.experiments(c.campaign_id)]
        ctx.settings = AgentSettings()  # without the control the loop sees the truth
        plain = history(ctx)
    assert [o.experiment_key for _, o in plain] == [o.experiment_key for _, o in truth]
    assert [x for x, _ in seen] == [e.intervention for e, _ in truth]  # same experiments, same order
    moved = 0
    for rnd in (1, 2):
        at = [i for i, (e, _) in enumerate(truth) if e.round == rnd]
        true_keys = sorted(truth[i][1].experiment_key for i in at)
        assert sorted(seen[i][1].experiment_key for i in at) == true_keys  # a permutation within the round
        moved += sum(seen[i][1].experiment_key != truth[i][1].experiment_key for i in at)
    assert moved >= 2  # the loop did see answers of other experiments


def test_ax_gets_the_spec_s_objective_and_every_safety_limit_as_its_constraints() -> None:
    from wetloop.agent.bench_ax import _constraints, _metrics, _objective, ax_unsupported
    from wetloop.campaign import Observation, Trajectory, default_spec_path

    patient = load_spec(default_spec_path())  # a series limit: glucose below 54 mg/dL
    assert _objective(patient) == ("time_in_range", "time_in_range")
    assert _constraints(patient) == [("min_glucose", "min_glucose >= 54.0")]
    day = Observation(
        experiment_key="k",
        status="ok",
        readouts={"time_in_range": 0.8},
        trajectory=Trajectory(times_min=(0.0, 5.0, 10.0), series={"glucose": (120.0, 61.5, 90.0)}),
    )
    assert _metrics(patient, day) == {"time_in_range": 0.8, "min_glucose": 61.5}
    assert _metrics(patient, day.model_copy(update={"status": "failed"})) is None  # Ax marks the trial failed
    combination = load_spec(SPEC)  # a readout limit, and a target objective
    assert _constraints(combination) == [("toxicity", "toxicity <= 0.3")]
    target = combination.with_overrides(objective={"readout": "kill_fraction", "direction": "target", "target_value": 0.5})
    name, objective = _objective(target)
    assert objective == f"-{name}"
    assert _metrics(target, day.model_copy(update={"readouts": {"kill_fraction": 0.8, "toxicity": 0.1}}))[name] == pytest.approx(
        0.3
    )
    cells = load_spec(Path(__file__).resolve().parents[2] / "wetloop/worlds/cell/specs/reprogram.yaml")
    assert "is a set" in (ax_unsupported(cells) or "")  # left out, with the reason, not run wrongly
