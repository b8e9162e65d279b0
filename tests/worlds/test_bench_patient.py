"""`bench patient` runs our campaign beside its no-learning and shuffled-feedback controls, random
search and the simulator's own controller, in one run on the real simulator (4-hour days)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from wetloop.agent.cli import _CliTools
from wetloop.campaign import CampaignStore, load_spec
from wetloop.worlds.simglucose._bench import bench_patient, print_bench

from ..agent.test_crash_resume import FAST_ENV, short_spec


@pytest.mark.slow
def test_bench_patient_runs_every_control_in_the_same_run(tmp_path, monkeypatch) -> None:
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    spec = load_spec(short_spec(tmp_path, rounds=2, batch=2))
    fig = bench_patient(spec, tmp_path / "bench", _CliTools().create, console=Console(quiet=True))
    for name in ("ours", "no_learning", "shuffled_feedback", "random"):
        assert fig[name]["experiments"] == 4, name
        assert 0.0 <= (fig[name]["final_time_in_range"] or 0.0) <= 1.0
    # the controls are what they say: no model is ever fitted without learning; the others refit each round
    for folder, models in (("no-learning", 0), ("ours", 2), ("shuffled", 2)):
        with CampaignStore(tmp_path / "bench" / folder / "store.sqlite") as store:
            assert store.count(store.campaign_ids()[0], "model") == models, folder
    settings = json.loads((tmp_path / "bench" / "shuffled" / "campaign.json").read_text())["settings"]
    assert settings["shuffle_feedback"] is True and settings["learn"] is True
    console = Console(record=True, width=160)
    print_bench(fig, console)
    table = console.export_text()
    assert "no learning" in table and "shuffled feedback" in table and "reference" in table
