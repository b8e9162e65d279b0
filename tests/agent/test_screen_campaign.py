from tests.screen_data import data_env, needs_data  # noqa: F401
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.report import load_view, write_report
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, CampaignStore, load_spec
from wetloop.worlds.crispr_screen import load_essentials
from wetloop.worlds.crispr_screen._report import screen_rows

pytestmark = needs_data
SPEC = "wetloop/campaign/specs/screen_ifng.yaml"


def test_screen_campaign_runs_through_the_graph(tmp_path, data_env):
    spec = load_spec(SPEC).with_overrides(budget=Budget(rounds=2, batch=16))
    with Campaign.create(spec, tmp_path / "run", settings=AgentSettings()) as c:
        assert c.run().done
        store, cid = c.store, c.campaign_id
        exps = store.experiments(cid)
        assert len(exps) == 32 and len({e.intervention.values["gene"] for e in exps}) == 32
        assert not {e.intervention.values["gene"] for e in exps} & load_essentials()  # exclude_core_essential
        assert store.count(cid, "model") == 2
        rankings = store.records(cid, "ranking")
        assert all(len(r.payload["ranked"]) <= 16 + 300 for r in rankings)
        # a hit is a Bernoulli readout: only results the model gave < 2.5% are surprises (the members'
        # agreement before any result once made every round-1 gene a "surprise at 100 sd")
        surprises = [e.payload for e in store.records(cid, "event") if e.payload.get("type") == "surprise"]
        assert len(surprises) <= 2 and all(e["p"] < 0.025 for e in surprises)
        hyps = store.hypotheses(cid).values()
        assert any(h.evidence_for or h.evidence_against for h in hyps)
        rows = screen_rows(load_view(store, cid))
        found = sum(1 for e in exps if store.observations(cid)[e.key].readouts["hit"] > 0)
        assert [r["tested"] for r in rows] == [16, 32] and rows[-1]["hits"] == found
        # random and oracle come from the screen itself: 18k genes, ~900 hits
        assert 0 < rows[-1]["random"] < 32 * 0.1 and rows[-1]["oracle"] == 32
        html = write_report(store, cid, tmp_path / "report").html.read_text()
        assert "cumulative hits per round" in html and "random (expected)" in html


def test_bench_screen_figures(data_env):
    from wetloop.worlds.crispr_screen._bench import bench_screen

    fig = bench_screen("IFNG", None, rounds=2, batch=32, seeds=2, controls=False)
    m = fig["methods"]
    assert set(m) == {"ours", "random", "random_non_essential", "essential_first", "oracle"} and "controls" not in fig
    assert fig["exclude_core_essential"] and fig["published_bda_claude35_all"] == 0.095
    for name in m:
        for metric in ("all", "non_essential"):
            per_round = m[name][metric]["mean_per_round"]
            assert len(per_round) == 2 and per_round[0] <= per_round[1] and len(m[name][metric]["per_seed_final"]) == 2
    # 64 genes against ~800 non-essential hits: the oracle finds 64, essential-first none
    assert abs(m["oracle"]["non_essential"]["mean_per_round"][-1] - 64 / (fig["hits"] - 120)) < 0.02
    assert m["essential_first"]["non_essential"]["mean_per_round"][-1] == 0.0
    assert m["ours"]["non_essential"]["mean_per_round"][-1] <= m["oracle"]["non_essential"]["mean_per_round"][-1]


def test_a_reviewer_can_swap_a_gene_in_a_screen_campaign(tmp_path, data_env):
    """An edit is checked against the hard limits and, where the spec has safety limits, the model's
    safety prediction; a screen has none (its model predicts hits, not glucose), so the edit runs."""
    from wetloop.campaign import Decision, Intervention

    spec = load_spec(SPEC).with_overrides(budget=Budget(rounds=2, batch=4))
    with Campaign.create(spec, tmp_path / "run", settings=AgentSettings(review=True)) as c:
        first = c.run()
        second = c.review(
            [Decision(proposal_key=s["proposal_key"], action="approve", by="person:ada") for s in first.review["selected"]]
        )
        assert second.review is not None and second.review["round"] == 2  # round 2 ranks with a fitted screen model
        tested = {e.intervention.values["gene"] for e in c.store.experiments(c.campaign_id)}
        swap = next(g for g in ("IRF1", "STAT1", "JAK2", "IFNGR1") if g not in tested)
        sel = second.review["selected"]
        decisions = [
            Decision(
                proposal_key=sel[0]["proposal_key"],
                action="edit",
                by="person:ada",
                edited=Intervention(values={"gene": swap}),
                reason="test the receptor pathway",
            )
        ]
        decisions += [Decision(proposal_key=s["proposal_key"], action="approve", by="person:ada") for s in sel[1:]]
        assert c.review(decisions).done
        assert swap in {e.intervention.values["gene"] for e in c.store.experiments(c.campaign_id, round=2)}


def test_run_prints_the_hits_so_far_and_what_validation_set_aside(tmp_path, data_env, monkeypatch):
    """`wetloop run` on a screen: the rounds table has a running hits column and no unsafe column (the
    spec has no safety limits); the validate lines say what the candidates they set aside were."""
    from typer.testing import CliRunner

    from wetloop.agent.cli import app

    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(app, ["run", SPEC, "--rounds", "2", "--batch", "8", "--dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.split()[:3] == ["round", "run", "hits"])
    assert "unsafe" not in header
    validated = [line for line in result.output.splitlines() if "validated:" in line]
    assert len(validated) == 2 and all("set aside" in line and "rejected" not in line for line in validated)
    with CampaignStore(tmp_path / "run" / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        hits = sum(o.readouts["hit"] > 0 for o in store.observations(cid).values())
    last = next(line for line in reversed(result.output.splitlines()) if line.strip().startswith("2 "))
    assert int(last.split()[2]) == hits
