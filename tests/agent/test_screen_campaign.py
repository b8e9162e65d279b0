from tests.screen_data import data_env, needs_data  # noqa: F401
from wetloop.agent._report_screen import screen_rows
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.report import load_view, write_report
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, load_spec

pytestmark = needs_data
SPEC = "wetloop/campaign/specs/screen_ifng.yaml"


def test_screen_campaign_runs_through_the_graph(tmp_path, data_env):
    spec = load_spec(SPEC).with_overrides(budget=Budget(rounds=2, batch=16))
    with Campaign.create(spec, tmp_path / "run", settings=AgentSettings()) as c:
        assert c.run().done
        store, cid = c.store, c.campaign_id
        exps = store.experiments(cid)
        assert len(exps) == 32 and len({e.intervention.values["gene"] for e in exps}) == 32
        assert store.count(cid, "model") == 2
        rankings = store.records(cid, "ranking")
        assert all(len(r.payload["ranked"]) <= 16 + 300 for r in rankings)
        hyps = store.hypotheses(cid).values()
        assert any(h.evidence_for or h.evidence_against for h in hyps)
        rows = screen_rows(load_view(store, cid))
        found = sum(1 for e in exps if store.observations(cid)[e.key].readouts["hit"] > 0)
        assert [r["tested"] for r in rows] == [16, 32] and rows[-1]["hits"] == found
        # random and oracle come from the screen itself: 18k genes, ~900 hits
        assert 0 < rows[-1]["random"] < 32 * 0.1 and rows[-1]["oracle"] == 32
        html = write_report(store, cid, tmp_path / "report").html.read_text()
        assert "cumulative hits per round" in html and "random (expected)" in html
