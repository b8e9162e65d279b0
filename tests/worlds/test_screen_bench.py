"""`wetloop bench screen`: controls in the same run, per-screen batches, the summary over screens."""

import json

import pytest
from typer.testing import CliRunner

from tests.screen_data import DATA, data_env, needs_data  # noqa: F401
from wetloop.worlds.crispr_screen._bench import (
    auto_batch,
    bench_screen,
    default_screens,
    parse_batches,
    summarise_screens,
)


def test_auto_batch_is_128_or_a_32nd_of_a_small_library():
    assert auto_batch(18_317) == 128 and auto_batch(4_096) == 128
    assert auto_batch(1_053) == 32 and auto_batch(20) == 1


def test_parse_batches():
    assert parse_batches(["64", "Scharenberg22=32"], ["IFNG", "Scharenberg22"]) == (64, {"Scharenberg22": 32})
    assert parse_batches([], ["IFNG"]) == (None, {})
    with pytest.raises(ValueError, match="'Nope' is not a benched screen"):
        parse_batches(["Nope=32"], ["IFNG"])
    for bad in ("0", "x", "IFNG=", "IFNG=-3"):
        with pytest.raises(ValueError, match="positive number"):
            parse_batches([bad], ["IFNG"])


def _fig(name, ours, none, shuffled):
    finals = {"ours": ours, "ours_no_learning": none, "ours_shuffled_feedback": shuffled}
    from wetloop.worlds.crispr_screen._bench import _controls

    fig = {"screen": name, "methods": {m: {"non_essential": {"per_seed_final": v}} for m, v in finals.items()}}
    return fig | {"controls": _controls(fig)}


def test_controls_and_the_summary_over_screens():
    a = _fig("A", [0.12, 0.10], [0.08, 0.08], [0.06, 0.07])  # gain 1.375, drop 0.409, shuffled below worst real
    b = _fig("B", [0.05, 0.07], [0.06, 0.06], [0.08, 0.04])  # gain 1.0, drop 0.0, shuffled 0.08 > worst real 0.05
    assert a["controls"] == {"learning_gain": 1.375, "shuffle_drop": 0.409, "shuffled_beats_worst_real": False}
    assert b["controls"] == {"learning_gain": 1.0, "shuffle_drop": 0.0, "shuffled_beats_worst_real": True}
    s = summarise_screens([a, b])
    assert (
        s["mean_learning_gain"] == 1.188
        and s["min_learning_gain"] == 1.0
        and s["mean_shuffle_drop"] == pytest.approx(0.2045, abs=1e-3)
    )
    assert s["shuffled_beats_worst_real_on"] == ["B"]
    assert s["leave_one_screen_out"][0] == {
        "held_out": "A",
        "learning_gain": 1.375,
        "shuffle_drop": 0.409,
        "others_mean_learning_gain": 1.0,
        "others_mean_shuffle_drop": 0.0,
    }
    assert s["targets"] == {
        "learning_gain_at_least_1.10_on_every_screen": False,
        "mean_learning_gain_at_least_1.25": False,
        "mean_shuffle_drop_at_least_0.15": True,
        "no_shuffled_seed_beats_the_worst_real_seed": False,
    }
    assert summarise_screens([{"screen": "C", "methods": {}}]) is None  # no controls, no summary


def test_a_screen_with_no_learning_hits_has_no_gain():
    z = _fig("Z", [0.01], [0.0], [0.0])
    assert (
        z["controls"]["learning_gain"] is None
        and summarise_screens([z])["targets"]["learning_gain_at_least_1.10_on_every_screen"] is False
    )


def test_default_screens(tmp_path, monkeypatch):
    monkeypatch.delenv("WETLOOP_DATA_DIR", raising=False)
    assert default_screens(None) == ["Carnevale22_Adenosine", "IFNG", "Scharenberg22"]  # downloadable ones
    (tmp_path / "screens").mkdir()
    for name in ("B", "A"):
        (tmp_path / "screens" / f"ground_truth_{name}.csv").write_text("Gene,Score\n")
    assert default_screens(str(tmp_path)) == ["A", "B"]
    monkeypatch.setenv("WETLOOP_DATA_DIR", str(tmp_path))
    assert default_screens(None) == ["A", "B"]


def _cli(*args):
    from wetloop.agent.cli import app

    return CliRunner().invoke(app, ["bench", "screen", *args])


def test_bench_refuses_bad_batches_and_screens_before_running(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "ground_truth_Horlbeck.csv").write_text("Gene_pairs,Score\n" + "".join(f"G{i}_H{i},1\n" for i in range(5)))
    bad = _cli("--screen", "IFNG", "--batch", "Scharenberg22=32")
    assert bad.exit_code == 2 and "not a benched screen" in bad.output
    pairs = _cli("--data-dir", str(tmp_path))  # every screen of the directory: the one pair screen
    assert pairs.exit_code == 2 and "gene-pair screen" in pairs.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = _cli("--data-dir", str(empty))
    assert none.exit_code == 2 and "no ground_truth_<name>.csv" in none.output


@needs_data
def test_one_run_gives_ours_its_controls_and_the_baselines_with_the_same_seeds(data_env, monkeypatch):
    """Scharenberg22 (1,053 genes: batches of 32 by default) and Zhuang19_NK (no hit list: top 5%), found
    under WETLOOP_DATA_DIR by name, 2 rounds x 2 seeds; --json gives the figures and the summary."""
    monkeypatch.setenv("COLUMNS", "200")
    result = _cli(
        "--screen",
        "Scharenberg22",
        "--screen",
        "Zhuang19_NK",
        "--batch",
        "Zhuang19_NK=16",
        "--rounds",
        "2",
        "--seeds",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    sch, zh = out["screens"]
    assert (sch["screen"], sch["batch"], zh["batch"]) == ("Scharenberg22", 32, 16)
    assert zh["hits_source"] == "top 5% by |score|" and zh["spreadsheet_dates"] == {"found": 24, "mapped": 22, "left": 2}
    for fig in (sch, zh):
        assert set(fig["methods"]) == {
            "ours",
            "ours_no_learning",
            "ours_shuffled_feedback",
            "random",
            "random_non_essential",
            "essential_first",
            "oracle",
        }
        assert all(len(m["non_essential"]["per_seed_final"]) == 2 for m in fig["methods"].values())
        assert set(fig["controls"]) == {"learning_gain", "shuffle_drop", "shuffled_beats_worst_real"}
    ours, none = (sum(sch["methods"][m]["non_essential"]["per_seed_final"]) for m in ("ours", "ours_no_learning"))
    assert sch["controls"]["learning_gain"] == round(ours / none, 3)
    assert out["summary"]["screens"] == 2 and len(out["summary"]["leave_one_screen_out"]) == 2
    assert "seed 2/2" in result.stderr and "screen 2/2: Zhuang19_NK" in result.stderr  # progress on stderr


@needs_data
def test_the_shuffled_control_gets_permuted_answers(data_env, monkeypatch):
    """The control is a real shuffled campaign: with the same seed it tests other genes than ours."""
    from wetloop.worlds.crispr_screen._bench import run_campaign, screen_spec
    from wetloop.worlds.crispr_screen._lab import screen_of

    spec = screen_spec("Scharenberg22", None, 3, 32, 0)
    screen = screen_of(spec)
    real = run_campaign(spec, screen)
    shuffled = run_campaign(screen_spec("Scharenberg22", None, 3, 32, 0, shuffle=True), screen)
    assert real[0] == shuffled[0] and real[1:] != shuffled[1:]  # round 1 has no feedback yet
    fig = bench_screen("Scharenberg22", None, 1, None, 1, controls=False)
    assert fig["batch"] == 32 and "ours_shuffled_feedback" not in fig["methods"] and not fig["shuffle_feedback"]


@needs_data
def test_ours_and_its_controls_share_each_seed_and_the_former_shuffle_flag_still_works(data_env, monkeypatch):
    """Per seed: ours, ours without learning and ours on shuffled feedback, all with that seed; scripts that
    called bench_screen(..., shuffle=True) still get ours itself on shuffled feedback."""
    from wetloop.worlds.crispr_screen import _bench

    calls = []

    def recording(spec, screen, learn=True):
        calls.append((spec.seed, learn, spec.world_options["shuffle_feedback"], spec.budget.batch))
        return [list(screen.genes[:4])]

    monkeypatch.setattr(_bench, "run_campaign", recording)
    bench_screen("Scharenberg22", None, 1, None, 2)
    assert calls == [(0, True, False, 32), (0, False, False, 32), (0, True, True, 32)] + [
        (1, True, False, 32),
        (1, False, False, 32),
        (1, True, True, 32),
    ]
    calls.clear()
    fig = bench_screen("Scharenberg22", None, 1, 8, 1, True, controls=False)
    assert calls == [(0, True, True, 8)] and fig["shuffle_feedback"]
