"""The campaign report, on a hand-made two-round campaign in a real store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from wetloop.agent.report import (
    ReportPaths,
    band_figure,
    load_view,
    objective_figure,
    summary_rows,
    surprise_fraction,
    trajectory_figure,
    write_report,
)
from wetloop.campaign import (
    Band,
    CampaignStore,
    Cost,
    Decision,
    Experiment,
    Hypothesis,
    Intervention,
    Observation,
    Proposal,
    RankedProposal,
    Ranking,
    SafetyLimit,
    SafetyRemoval,
    ScoreBreakdown,
    Trajectory,
    default_spec_path,
    load_spec,
)
from wetloop.worlds.simglucose import glucose_readouts

TIMES = tuple(float(m) for m in range(0, 1441, 60))  # 25 hourly readings over one day
HYPOTHESIS = "Lower basal (< 0.7 U/h) avoids overnight lows"
REMOVAL_REASON = "P(glucose < 54 mg/dL) = 0.31 exceeds the limit 0.05"
REJECT_REASON = "too close to the hypoglycaemia threshold"


def glucose(in_range: int, low: bool = False) -> list[float]:
    """A day with `in_range` readings at 120 mg/dL, the rest at 200 (one at 50 when `low`)."""
    day = [120.0] * in_range + [200.0] * (len(TIMES) - in_range)
    if low:
        day[-1] = 50.0
    return day


def regimen(basal: float, carb_ratio: float) -> Intervention:
    return Intervention(values={"basal": basal, "carb_ratio": carb_ratio})


def band(lower: float, upper: float) -> Band:
    n = len(TIMES)
    return Band(
        series="glucose", level=0.9, times_min=TIMES, lower=(lower,) * n, median=((lower + upper) / 2,) * n, upper=(upper,) * n
    )


def ranked(x: Intervention, rank: int, selected: bool, ev: float | None = None, b: Band | None = None) -> RankedProposal:
    score = ScoreBreakdown(
        cost=1.0,
        acquisition=1.0 / rank,
        expected_value=ev,
        value_std=None if ev is None else 0.05,
        p_unsafe=None if ev is None else 0.01,
    )
    return RankedProposal(
        proposal=Proposal(intervention=x, hypothesis_id="h1"), rank=rank, score=score, selected=selected, band=b
    )


def run(store: CampaignStore, cid: str, rnd: int, x: Intervention, day: list[float] | None) -> Experiment:
    """Approve an experiment and, given a day of glucose, record its ok observation."""
    exp = Experiment(campaign_id=cid, round=rnd, intervention=x, approved_by="alice", hypothesis_ids=("h1",))
    store.append(cid, "experiment", exp, round=rnd, key=exp.key)
    if day is not None:
        spec = store.spec(cid)
        obs = Observation(
            experiment_key=exp.key,
            status="ok",
            readouts=glucose_readouts(np.array(day), spec),
            trajectory=Trajectory(times_min=TIMES, series={"glucose": tuple(day)}),
        )
        store.append(cid, "observation", obs, round=rnd, key=exp.key)
    return exp


A1, B1 = regimen(0.5, 30.0), regimen(0.8, 25.0)
A2, B2, C2, RISKY = regimen(0.6, 20.0), regimen(0.7, 22.0), regimen(0.9, 18.0), regimen(2.5, 5.0)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[CampaignStore, str]:
    """Round 1 (no model): TIR 0.60 and 0.68. Round 2 (model m1): A2 reaches 0.88 but dips below
    54 mg/dL (unsafe) and is far outside its band; B2 reaches 0.80 safely inside its band."""
    store = CampaignStore(tmp_path_factory.mktemp("store") / "campaign.sqlite")
    cid = store.create_campaign(load_spec(default_spec_path()), "demo")
    store.append(cid, "hypothesis", Hypothesis(id="h1", statement=HYPOTHESIS, source="offline", round=1), round=1)
    store.append(cid, "ranking", Ranking(round=1, ranked=(ranked(A1, 1, True), ranked(B1, 2, True))), round=1)
    exps = [run(store, cid, 1, A1, glucose(15)), run(store, cid, 1, B1, glucose(17))]
    store.append(cid, "model", {"version": "m1", "round": 1, "fit": {"rmse_mgdl": 12.5, "coverage_90": 0.875}})
    removal = SafetyRemoval(
        proposal=Proposal(intervention=RISKY), p_unsafe=0.31, limit="severe hypoglycaemia", reason=REMOVAL_REASON
    )
    ranking = Ranking(
        round=2,
        model_version="m1",
        removed=(removal,),
        ranked=(
            ranked(A2, 1, True, 0.75, band(150.0, 170.0)),
            ranked(B2, 2, True, 0.85, band(100.0, 220.0)),
            ranked(C2, 3, False, 0.7),
        ),
    )
    store.append(cid, "ranking", ranking, round=2)
    store.append(cid, "decision", Decision(proposal_key=A2.key(), action="approve", by="alice"), round=2)
    store.append(cid, "decision", Decision(proposal_key=C2.key(), action="reject", by="bob", reason=REJECT_REASON), round=2)
    store.append(cid, "invalid_proposal", {"raw": {"basal": 9.0, "carb_ratio": 20.0}, "reason": "basal out of limits"}, round=2)
    exps += [run(store, cid, 2, A2, glucose(22, low=True)), run(store, cid, 2, B2, glucose(20))]
    updated = Hypothesis(
        id="h1",
        statement=HYPOTHESIS,
        source="offline",
        round=1,
        motivated=(exps[0].key,),
        evidence_for=("B2 stayed above 54 mg/dL all day",),
    )
    store.append(cid, "hypothesis", updated, round=2)
    return store, cid


@pytest.fixture(scope="module")
def written(campaign: tuple[CampaignStore, str], tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    store, cid = campaign
    return write_report(store, cid, tmp_path_factory.mktemp("report") / "out")


def test_summary_rows_track_best_safe_day_per_round(campaign: tuple[CampaignStore, str]) -> None:
    rows = summary_rows(*campaign)
    assert [r["round"] for r in rows] == [1, 2]
    assert [r["experiments"] for r in rows] == [2, 2]
    assert rows[0]["best_objective"] == pytest.approx(17 / 25)
    # A2's 0.88 was an unsafe day, so the best answer after round 2 is B2's 0.80
    assert rows[1]["best_objective"] == pytest.approx(20 / 25)
    assert rows[1]["best_intervention"] == "basal=0.7 U/h, carb_ratio=22 g/U"
    assert [r["unsafe_days"] for r in rows] == [0, 1]
    assert rows[0]["predicted_mean"] is None
    assert rows[1]["predicted_mean"] == pytest.approx(0.80)
    assert rows[1]["observed_mean"] == pytest.approx((22 + 20) / 50)


def test_report_files_exist_and_html_is_self_contained(written: ReportPaths) -> None:
    assert written.html.name == "report.html" and written.markdown.name == "summary.md"
    html = written.html.read_text()
    assert "plotly.js v" in html and "Plotly.newPlot" in html
    assert html.count("* plotly.js v") == 1  # the library is embedded once, not per figure
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)


def test_html_shows_removal_best_hypothesis_decisions_and_models(written: ReportPaths) -> None:
    html = written.html.read_text()
    assert REMOVAL_REASON.replace("<", "&lt;") in html
    assert "basal=0.7 U/h, carb_ratio=22 g/U" in html
    assert "Lower basal (&lt; 0.7 U/h) avoids overnight lows" in html and HYPOTHESIS not in html  # escaped
    assert "supported" in html
    assert REJECT_REASON in html and "bob" in html
    assert "basal out of limits" in html
    assert "rmse_mgdl = 12.5" in html


def test_html_flags_the_surprise(written: ReportPaths) -> None:
    html = written.html.read_text()
    surprises = html.split("<h3>Surprises</h3>", 1)[1].split("</table>", 1)[0]
    assert "basal=0.6 U/h" in surprises and "basal=0.7 U/h" not in surprises


def test_markdown_summary(written: ReportPaths) -> None:
    md = written.markdown.read_text()
    assert "Which basal rate and carb ratio" in md
    assert "**Best intervention:** basal=0.7 U/h, carb_ratio=22 g/U" in md and "no day with it was unsafe" in md
    assert "Unsafe days in the campaign: 1 of 4 observed." in md
    assert "| round | days | observed | best safe so far |" in md and "| 2 | 2 | 2 | 0.8 |" in md
    assert f"**supported** (1 for, 0 against): {HYPOTHESIS}" in md
    assert str(written.html.resolve()) in md


def test_objective_figure_marks_unsafe_days_and_predictions(campaign: tuple[CampaignStore, str]) -> None:
    fig = objective_figure(load_view(*campaign))
    traces = {t.name: t for t in fig.data}
    assert list(traces["observed, unsafe day"].y) == [pytest.approx(22 / 25)]
    assert len(traces["observed"].y) == 3
    assert list(traces["best safe so far"].y) == pytest.approx([17 / 25, 20 / 25])
    predicted = traces["predicted (selected, ±1 sd)"]
    assert list(predicted.y) == [0.75, 0.85] and all(x > 2 for x in predicted.x)


def test_trajectory_figure_has_a_panel_per_banded_experiment(campaign: tuple[CampaignStore, str]) -> None:
    fig = trajectory_figure(load_view(*campaign))
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 2  # round 1 had no model, hence no bands
    assert "surprise" in titles[0] and "surprise" not in titles[1]
    observed = [t for t in fig.data if t.name == "observed glucose"]
    assert len(observed) == 2 and [t.showlegend for t in observed] == [True, False]


def test_surprise_fraction_interpolates_the_band() -> None:
    b = Band(
        series="glucose", level=0.9, times_min=(0.0, 100.0), lower=(100.0, 200.0), median=(150.0, 250.0), upper=(200.0, 300.0)
    )
    obs = Trajectory(times_min=(0.0, 50.0, 100.0, 200.0), series={"glucose": (150.0, 140.0, 350.0, 0.0)})
    # at 50 min the band is [150, 250], so 140 is outside; the reading at 200 min lies past the band
    assert surprise_fraction(b, obs) == pytest.approx(2 / 3)
    assert surprise_fraction(b.model_copy(update={"series": "cgm"}), obs) is None


@pytest.mark.parametrize("pending", [False, True])
def test_campaign_without_observations_renders_empty_states(tmp_path: Path, pending: bool) -> None:
    store = CampaignStore(tmp_path / "campaign.sqlite")
    cid = store.create_campaign(load_spec(default_spec_path()), "fresh")
    if pending:  # ranked and approved, the lab has not answered yet
        store.append(cid, "ranking", Ranking(round=1, ranked=(ranked(A1, 1, True),)), round=1)
        run(store, cid, 1, A1, None)
    paths = write_report(store, cid, tmp_path / "out")
    html, md = paths.html.read_text(), paths.markdown.read_text()
    assert "No observations yet" in html and "No predicted trajectory bands yet" in html
    assert "No experiment has been observed yet." in md
    assert ("pending" in html) is pending
    assert [r["best_objective"] for r in summary_rows(store, cid)] == ([None] if pending else [])


def test_report_totals_what_was_spent(tmp_path: Path) -> None:
    """spec.cost_of(values) summed over the experiments with a result (ok or failed), per round and in all."""
    spec = load_spec(default_spec_path()).with_overrides(cost=Cost(per_experiment=2.0, per_unit={"basal": 10.0}, unit="EUR"))
    store = CampaignStore(tmp_path / "campaign.sqlite")
    cid = store.create_campaign(spec, "costly")
    run(store, cid, 1, A1, glucose(15))  # 2 + 10 * 0.5 = 7
    failed = run(store, cid, 1, B1, None)  # 2 + 10 * 0.8 = 10, paid although it failed
    store.append(
        cid, "observation", Observation(experiment_key=failed.key, status="failed", message="pump"), round=1, key=failed.key
    )
    run(store, cid, 2, A2, glucose(20))  # 2 + 10 * 0.6 = 8
    run(store, cid, 2, B2, None)  # pending: no result, nothing spent yet
    view = load_view(store, cid)
    assert view.spent() == pytest.approx(25.0) and view.spent(round=2) == pytest.approx(8.0)
    rows = summary_rows(store, cid)
    assert [(r["spent"], r["spent_total"]) for r in rows] == [pytest.approx((17.0, 17.0)), pytest.approx((8.0, 25.0))]
    paths = write_report(store, cid, tmp_path / "out")
    assert "**Spent:** 25 EUR on 3 experiments with a result (budget: 24 experiments)." in paths.markdown.read_text()
    html = paths.html.read_text()
    assert "<dt>Spent</dt><dd>25 EUR on 3 experiments with a result</dd>" in html and "spent (EUR)" in html


def test_band_figure_draws_the_world_series_limits_range_and_unit(campaign: tuple[CampaignStore, str]) -> None:
    """From the world's declarations, not from a series name: the y axis carries the series' unit, the
    time-in-range readout's range is shaded, and each threshold of a safety limit on the series is dotted."""
    view = load_view(*campaign)
    two_sided = SafetyLimit(name="excursion", series="glucose", below=54.0, above=300.0, max_probability=0.05)
    spec = view.spec.with_overrides(safety=(two_sided,))
    fig = band_figure(spec, [("one", band(100.0, 200.0), None)])
    lines = {t.name: t.y[0] for t in fig.data if t.name and t.name.startswith("excursion")}
    assert lines == {"excursion (< 54)": 54.0, "excursion (> 300)": 300.0}
    assert [(r.y0, r.y1) for r in fig.layout.shapes] == [(70.0, 180.0)]
    assert fig.layout.yaxis.title.text == "glucose (mg/dL)"
    other = band(0.0, 1.0).model_copy(update={"series": "cgm"})  # a series the world does not declare: no range
    assert band_figure(spec, [("one", other, None)]).layout.shapes == ()


# -- a counting world (a screen), a target objective, a remote lab, long lists ----------------------
def screen_campaign(tmp_path: Path, n: int = 60) -> tuple[CampaignStore, str]:
    """A screen campaign of `n` genes over 3 rounds, every fifth gene a hit (no safety limits)."""
    from wetloop.campaign import Budget

    spec = load_spec(Path("wetloop/campaign/specs/screen_ifng.yaml")).with_overrides(budget=Budget(rounds=3, batch=n // 3))
    store = CampaignStore(tmp_path / "screen.sqlite")
    cid = store.create_campaign(spec, "screen")
    for i in range(n):
        rnd = 1 + i * 3 // n
        exp = Experiment(campaign_id=cid, round=rnd, intervention=Intervention(values={"gene": f"GENE{i}"}), approved_by="p")
        store.append(cid, "experiment", exp, round=rnd, key=exp.key)
        readouts = {"hit": float(i % 5 == 0), "score": float(i) / 10}
        store.append(
            cid, "observation", Observation(experiment_key=exp.key, status="ok", readouts=readouts), round=rnd, key=exp.key
        )
    for i in range(40):  # what validate set aside
        store.append(cid, "invalid_proposal", {"raw": {"gene": "X"}, "reason": f"already run: gene=GENE{i}"}, round=2)
    return store, cid


def test_screen_report_speaks_in_experiments_lists_hits_and_folds_long_lists(tmp_path: Path) -> None:
    store, cid = screen_campaign(tmp_path)
    paths = write_report(store, cid, tmp_path / "out")
    html, md = paths.html.read_text(), paths.markdown.read_text()
    # no patient wording where experiments are not days and the spec has no safety limits
    for text in (re.sub(r"<script.*?</script>", "", html, flags=re.S), md):
        assert " day" not in text and "Unsafe" not in text and "unsafe experiments" not in text
    assert "no safety limits in this spec" in html
    # the world's hits table: gene, round found, score (12 hits: GENE0, GENE5, ..., GENE55)
    hits = html.split("<h3>Hits found</h3>", 1)[1].split("</table>", 1)[0]
    assert "12 hits among 60 genes tested" in hits and hits.count("<tr>") == 13
    assert '<td>GENE55</td><td class="n">3</td><td class="n">5.5</td>' in hits
    # the experiment list is bounded: 25 listed (the best first), all 60 folded away
    experiments = html.split("<h3>Experiments</h3>", 1)[1].split("<h2>", 1)[0]
    listed = experiments.split("<details>", 1)[0]
    assert listed.count("<tr>") == 1 + 25 and "All 60 experiments, in the order approved (folded)" in experiments
    assert "60 experiments approved (60 ok)" in experiments and "the 25 with the best observed hit" in experiments
    assert "40 candidates set aside before ranking: 40 already run" in html
    # the running total of hits, in the summary and the rounds table
    assert "**Hits found:** 12 in 60 experiments observed." in md and "Best intervention" not in md
    assert "| round | experiments | observed | hits so far |" in md
    assert [r["total"] for r in summary_rows(store, cid)] == [4.0, 8.0, 12.0]
    assert "local: the crispr_screen world run by wetloop itself" in html


def test_terminal_rounds_table_has_the_running_total_and_no_unsafe_column_without_limits(tmp_path: Path) -> None:
    from rich.console import Console

    from wetloop.agent.cli import summary_table

    store, cid = screen_campaign(tmp_path)
    console = Console(record=True, width=120)
    console.print(summary_table(store.spec(cid), summary_rows(store, cid), cid))
    text = console.export_text()
    header = next(line for line in text.splitlines() if "round" in line and "run" in line)
    assert header.split() == ["round", "run", "hits", "best", "best", "intervention", "pred.", "obs.", "spent"]
    assert [line.split()[2] for line in text.splitlines() if line.strip()[:1] in "123" and "GENE" in line] == ["4", "8", "12"]
    patient = load_spec(default_spec_path())  # with safety limits: an unsafe column, no total
    console = Console(record=True, width=120)
    console.print(summary_table(patient, [], "p"))
    assert "unsafe" in console.export_text() and "hits" not in console.export_text()


def test_target_objective_is_shown_and_drawn_and_the_lab_is_named(tmp_path: Path) -> None:
    from wetloop.campaign import LabRef, Objective

    spec = load_spec(default_spec_path()).with_overrides(
        objective=Objective(readout="time_in_range", direction="target", target_value=0.75),
        lab=LabRef(adapter="http", options={"base_url": "http://127.0.0.1:8765"}),
    )
    store = CampaignStore(tmp_path / "campaign.sqlite")
    cid = store.create_campaign(spec, "target")
    run(store, cid, 1, A1, glucose(15))
    view = load_view(store, cid)
    fig = objective_figure(view)
    assert [s.y0 for s in fig.layout.shapes] == [0.75] and "target 0.75" in [a.text for a in fig.layout.annotations]
    html = write_report(store, cid, tmp_path / "out").html.read_text()
    assert "<dt>Objective</dt><dd>target time_in_range = 0.75 (the closer, the better)</dd>" in html
    assert "<dt>Lab</dt><dd>http adapter at http://127.0.0.1:8765</dd>" in html
    sila = spec.with_overrides(lab=LabRef(adapter="sila", options={"host": "10.0.0.5", "port": 50052}))
    store2 = CampaignStore(tmp_path / "sila.sqlite")
    html = write_report(store2, store2.create_campaign(sila, "s"), tmp_path / "out2").html.read_text()
    assert "<dt>Lab</dt><dd>sila adapter at 10.0.0.5:50052</dd>" in html


def test_report_says_which_ranking_and_trajectory_rounds_it_shows_and_why_the_order(written: ReportPaths) -> None:
    html = written.html.read_text()
    assert "Only the ranking of round 2 is shown, the last of the campaign's 2 rankings" in html
    assert "Why the rows are not in the order of the acquisition column" in html and "picked the batch" in html
    assert "Shown: every round with a predicted band (round 2)." in html


def test_trajectories_of_the_last_three_rounds_only_say_so(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "campaign.sqlite")
    cid = store.create_campaign(load_spec(default_spec_path()), "long")
    for rnd, x in enumerate((A1, B1, A2, B2, C2), start=1):
        store.append(cid, "ranking", Ranking(round=rnd, ranked=(ranked(x, 1, True, 0.7, band(100.0, 200.0)),)), round=rnd)
        run(store, cid, rnd, x, glucose(15))
    html = write_report(store, cid, tmp_path / "out").html.read_text()
    assert (
        "Shown: the last 3 rounds with a predicted band only (rounds 3, 4, 5); the 2 earlier rounds with bands (rounds 1, 2) are not drawn."
        in html
    )
    assert len(trajectory_figure(load_view(store, cid)).layout.annotations) == 3
