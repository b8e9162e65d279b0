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
    assert set(fig["methods"]) == {"ours", "ours_gp", "ours_no_learning", "random"}
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
