"""`bench patient` scores every method's pick on held-out days, beside our controls, random search,
Ax and the simulator's own controller, in one run on the real simulator (short varying days)."""

from __future__ import annotations

import json

import pytest
import yaml
from rich.console import Console

from wetloop.agent.cli import _CliTools
from wetloop.campaign import CampaignStore, load_spec
from wetloop.worlds.simglucose._bench import bench_patient, print_bench
from wetloop.worlds.simglucose._cli import DAYS_SPEC

from ..agent.test_crash_resume import FAST_ENV

SLOTS = [  # a 4-hour day with two meals whose times and sizes vary
    {
        "name": "breakfast",
        "probability": 1.0,
        "hour": 1.0,
        "hour_sd": 0.3,
        "earliest": 0.5,
        "latest": 1.5,
        "grams": 45,
        "grams_sd": 10,
    },
    {
        "name": "lunch",
        "probability": 0.9,
        "hour": 3.0,
        "hour_sd": 0.3,
        "earliest": 2.5,
        "latest": 3.5,
        "grams": 60,
        "grams_sd": 10,
    },
]


def short_days_spec(tmp_path, rounds: int = 2, batch: int = 2):
    raw = yaml.safe_load(DAYS_SPEC.read_text())
    raw["world_options"].update(hours=4, days={"meals": SLOTS, "carb_count_cv": 0.15, "random_start": True})
    raw["budget"] = {"rounds": rounds, "batch": batch}
    raw["at_ceiling"] = {"action": "explore"}
    path = tmp_path / "days.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


@pytest.mark.slow
def test_bench_patient_scores_every_pick_on_held_out_days(tmp_path, monkeypatch) -> None:
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WETLOOP_LAB_CACHE_DIR", str(tmp_path / "cache"))
    spec = short_days_spec(tmp_path)
    tools = _CliTools()
    fig = bench_patient(
        spec,
        tmp_path / "bench",
        tools.create,
        ax=tools.ax,
        export=tools.export,
        patients=["child#001", "adolescent#003"],
        held_out=2,
        console=Console(quiet=True),
    )
    run = fig["patients"]["child#001"]["seeds"]["0"]["methods"]
    assert set(run) == {"ours", "ours_population_prior", "no_learning", "shuffled_feedback", "random", "ax"}
    assert run["ours_population_prior"]["prior_patients"] == ["adolescent#003"]
    for name, m in run.items():
        assert m["experiments"] == 4, name
        if m["recommended"] is not None:  # a pick is scored on every held-out day
            assert m["held_out"]["days"] == 2 and 0.0 <= m["held_out"]["time_in_range"] <= 1.0, name
    assert run["ours"]["pick"] == "world model" and run["no_learning"]["pick"] == "best safe day"
    ref = fig["patients"]["child#001"]["reference"]
    assert ref["days"] == 2 and ref["time_in_range"] > 0.5  # the true-parameter controller keeps a child mostly in range
    # the campaigns ran on the child's body-weight start region, and on days drawn for each experiment
    folder = tmp_path / "bench" / "child-001-seed0"
    with CampaignStore(folder / "ours" / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        stored = store.spec(cid)
        assert stored.variable("basal_night").start[1] < 0.4  # 34.6 kg: 0.45 x 0.5 U/kg x 34.6 / 24 = 0.32 U/h
        seeds = {o.raw["day"]["day_seed"] for o in store.observations(cid).values()}
        assert len(seeds) == 4
    # the population prior fits a model before the campaign's first day (3 fits in 2 rounds, not 2)
    for folder_name, models in (("no-learning", 0), ("ours", 2), ("shuffled", 2), ("population-prior", 3)):
        with CampaignStore(folder / folder_name / "store.sqlite") as store:
            assert store.count(store.campaign_ids()[0], "model") == models, folder_name
    settings = json.loads((folder / "shuffled" / "campaign.json").read_text())["settings"]
    assert settings["shuffle_feedback"] is True and settings["learn"] is True
    assert fig["summary"]["ours"]["runs"] == 2
    console = Console(record=True, width=200)
    print_bench(fig, console)
    table = console.export_text()
    assert "held-out TIR" in table and "shuffled feedback" in table and "reference" in table and "ax" in table
