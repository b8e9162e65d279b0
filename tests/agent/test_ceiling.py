"""The loop at its objective's ceiling: stop keeps the budget, replicate runs the best once more, explore goes on."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from wetloop.agent import Campaign
from wetloop.agent.cli import app
from wetloop.agent.report import write_report
from wetloop.campaign import CampaignStore

from .fakes import capped_spec


def _run(spec, tmp_path, quiet):
    c = Campaign.create(spec, tmp_path / "run", console=quiet)
    return c, c.run()


def test_stop_ends_the_campaign_at_the_ceiling_and_keeps_the_budget(tmp_path, quiet) -> None:
    c, outcome = _run(capped_spec("stop"), tmp_path, quiet)
    with c:
        cid, store = c.campaign_id, c.store
        assert outcome.done and outcome.round == 1
        assert store.count(cid, "experiment") == 3 and store.count(cid, "ranking") == 1
        reached = store.ceiling(cid)
        assert reached is not None and reached.round == 1 and reached.action == "stop"
        assert reached.best == 1.0 and reached.ceiling == 1.0 and reached.intervention.values["x"] >= 0.5
        stop = outcome.stopped
        assert stop is not None and stop == store.early_stop(cid)
        assert (stop.round, stop.rounds, stop.experiments, stop.budget_experiments, stop.rounds_kept) == (1, 4, 3, 12, 3)
        assert "stopped after round 1 of 4 (3 of 12 experiments run, 3 round(s) of budget kept)" in stop.describe()
        assert "no experiment can improve on it" in stop.reason
        assert c.run().done and store.count(cid, "experiment") == 3  # a done campaign runs nothing
    with Campaign(tmp_path / "run", console=quiet) as again:  # reopened: still done, still says why
        assert again.outcome().done and again.outcome().stopped == stop
        paths = write_report(again.store, again.campaign_id, tmp_path / "report")
    html, markdown = paths.html.read_text(), paths.markdown.read_text()
    assert "<dt>Stopped early</dt><dd>stopped after round 1 of 4 (3 of 12 experiments run" in html
    assert "**Stopped early:** stopped after round 1 of 4" in markdown


def test_replicate_runs_the_best_result_once_more_then_stops(tmp_path, quiet) -> None:
    c, outcome = _run(capped_spec("replicate"), tmp_path, quiet)
    with c:
        cid, store = c.campaign_id, c.store
        reached = store.ceiling(cid)
        assert reached is not None and reached.round == 1 and reached.action == "replicate"
        assert outcome.done and outcome.round == 2
        (rep,) = store.experiments(cid, round=2)
        assert rep.intervention == reached.intervention and rep.context["replicate_of"] == reached.experiment_key
        assert rep.key != reached.experiment_key  # its own key: the lab ran it again
        observations = store.observations(cid)
        assert observations[rep.key].status == "ok" and observations[rep.key].readouts["y"] == 1.0
        (ranking,) = [r for r in store.rankings(cid) if r.round == 2]
        assert [r.proposal.source for r in ranking.selected] == ["replicate"] and "replicate" in ranking.note
        stop = outcome.stopped
        assert stop is not None and (stop.round, stop.experiments) == (2, 4)
        assert "the replicate of y = 1" in stop.reason and "gave 1" in stop.reason


def test_explore_keeps_spending_the_budget_on_information(tmp_path, quiet) -> None:
    c, outcome = _run(capped_spec("explore"), tmp_path, quiet)
    with c:
        cid, store = c.campaign_id, c.store
        assert outcome.done and outcome.round == 4 and outcome.stopped is None and store.early_stop(cid) is None
        reached = store.ceiling(cid)
        assert reached is not None and reached.round == 1 and reached.action == "explore"
        assert store.count(cid, "experiment") == 12
        later = [r for r in store.rankings(cid) if r.round > 1]
        assert len(later) == 3 and all("IG / cost" in r.note for r in later)


def test_without_a_known_ceiling_the_budget_is_spent(tmp_path, quiet) -> None:
    spec = capped_spec("stop", readouts=[{"name": "y"}, {"name": "strain"}], budget={"rounds": 2, "batch": 3})
    c, outcome = _run(spec, tmp_path, quiet)
    with c:
        assert outcome.done and outcome.round == 2 and outcome.stopped is None
        assert c.store.ceiling(c.campaign_id) is None and c.store.count(c.campaign_id, "experiment") == 6


class Crash(Exception):
    pass


class CrashAfter(CampaignStore):
    """A store that dies right after recording the event keyed `key` (as a kill before the next checkpoint)."""

    def __init__(self, path, key: str) -> None:
        super().__init__(path)
        self.key = key

    def append(self, campaign_id, kind, payload, *, round=None, key=None) -> bool:
        stored = super().append(campaign_id, kind, payload, round=round, key=key)
        if kind == "event" and key == self.key:
            raise Crash(key)
        return stored


@pytest.mark.parametrize("key", ["ceiling", "early_stop"])
def test_a_crash_around_the_stop_resumes_into_the_same_stop(tmp_path, quiet, key) -> None:
    c = Campaign.create(capped_spec("stop"), tmp_path / "run", console=quiet)
    with c:
        c.store.close()
        c.store = CrashAfter(tmp_path / "run" / "store.sqlite", key)
        with pytest.raises(Crash):
            c.run()
        assert not c.outcome().done
    with Campaign(tmp_path / "run", console=quiet) as again:
        cid = again.campaign_id
        outcome = again.run()
        assert outcome.done and outcome.round == 1 and outcome.stopped is not None
        assert len(again.store.records(cid, "event", key="ceiling")) == 1
        assert len(again.store.records(cid, "event", key="early_stop")) == 1
        assert again.store.count(cid, "experiment") == 3 and again.store.count(cid, "ranking") == 1


def test_the_cli_says_the_campaign_stopped_early_in_its_summary_status_and_resume(tmp_path) -> None:
    spec_file, run_dir = tmp_path / "capped.yaml", tmp_path / "run"
    spec_file.write_text(yaml.safe_dump(capped_spec("stop").model_dump(mode="json")))
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(spec_file), "--dir", str(run_dir)])
    assert ran.exit_code == 0, ran.output
    said = " ".join(ran.output.split())
    assert "stopped after round 1 of 4 (3 of 12 experiments run, 3 round(s) of budget kept)" in said and "report:" in said
    status = runner.invoke(app, ["status", "--dir", str(run_dir)])
    assert status.exit_code == 0 and "finished early: stopped after round 1 of 4" in " ".join(status.output.split())
    resumed = runner.invoke(app, ["resume", "--dir", str(run_dir)])
    assert resumed.exit_code == 0 and "is finished (stopped after round 1 of 4" in " ".join(resumed.output.split())
