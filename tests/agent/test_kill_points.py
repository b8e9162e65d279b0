"""A kill at a chosen instant between two writes of one node leaves an audit trail that is complete for
what was done: every experiment traces back to its decision, its ranked proposal and its hypothesis,
every ranked candidate is a recorded proposal, and the store holds no campaign without its run folder.

The kill points are deterministic: the child process's store exits the process (as SIGKILL would)
right after the Nth record of a kind is appended; the campaign is then resumed and audited.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from wetloop.agent.errors import RunDirError
from wetloop.agent.runner import Campaign
from wetloop.campaign import CampaignStore, Ranking

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "wetloop/worlds/custom/specs/oral_dosing.yaml"

CHILD = """
import os, sys
from rich.console import Console
from wetloop.agent import runner
from wetloop.campaign import Budget, CampaignStore, load_spec

kind, nth = sys.argv[3], int(sys.argv[4])
appended = 0
original = CampaignStore.append

def append(self, campaign_id, k, payload, **kw):
    global appended
    stored = original(self, campaign_id, k, payload, **kw)
    if k == kind and stored:
        appended += 1
        if appended == nth:
            os._exit(9)  # as SIGKILL would: nothing after this runs, no transaction is finished
    return stored

CampaignStore.append = append
if kind == "meta":  # between the store's campaign record and the run folder's campaign.json
    runner._write_meta = lambda run_dir, meta: os._exit(9)
spec = load_spec(sys.argv[1]).with_overrides(budget=Budget(rounds=2, batch=3))
with runner.Campaign.create(spec, sys.argv[2], console=Console(quiet=True)) as c:
    c.run()
"""


def _kill_at(tmp_path: Path, kind: str, nth: int) -> Path:
    run_dir = tmp_path / "run"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(SPEC), str(run_dir), kind, str(nth)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 9, child.stderr[-2000:]
    return run_dir


def audit(store: CampaignStore, cid: str) -> None:
    """Every experiment is justified by the records before it; every ranked candidate was proposed."""
    proposals = {(r.round, r.key) for r in store.records(cid, "proposal")}
    hypotheses = store.hypotheses(cid)
    rankings = {r.round: Ranking.model_validate(r.payload) for r in store.records(cid, "ranking")}
    for rnd, ranking in rankings.items():
        for r in ranking.ranked:
            assert (rnd, r.proposal.intervention.key()) in proposals, f"round {rnd}: a ranked candidate was never recorded"
        decided = sorted(d.proposal_key for d in store.decisions(cid, round=rnd))  # none yet, or one per selected
        assert decided in ([], sorted(r.proposal.intervention.key() for r in ranking.selected)), f"round {rnd}: {decided}"
    for exp in store.experiments(cid):
        approving = [d for d in store.decisions(cid, round=exp.round) if d.action != "reject"]
        keys = {d.edited.key() if d.edited is not None else d.proposal_key for d in approving}
        assert exp.intervention.key() in keys, f"experiment {exp.key} ran with no decision on record"
        assert all(h in hypotheses for h in exp.hypothesis_ids), f"experiment {exp.key} names an unrecorded hypothesis"
    assert store.campaign_ids() == [cid]
    assert store.records(cid, "event", key="run"), "the run record (settings, proposer) is not with the campaign"


KILL_POINTS = [
    ("proposal", 3),  # mid-validate, round 1
    ("experiment", 2),  # mid-submit
    ("decision", 1),  # mid-review, round 1
    ("decision", 5),  # mid-review, round 2
    ("observation", 1),
    ("hypothesis", 1),
    ("ranking", 1),
]


@pytest.mark.parametrize("kind, nth", KILL_POINTS, ids=[f"{k}-{n}" for k, n in KILL_POINTS])
def test_a_kill_between_two_writes_leaves_a_complete_audit_trail(tmp_path: Path, kind: str, nth: int) -> None:
    run_dir = _kill_at(tmp_path, kind, nth)
    with Campaign(run_dir, console=Console(quiet=True)) as c:
        audit(c.store, c.campaign_id)  # what was done before the kill is complete
        assert c.run().done
        audit(c.store, c.campaign_id)
        assert len(c.store.experiments(c.campaign_id)) == 6
        assert sorted(c.store.observations(c.campaign_id)) == sorted(e.key for e in c.store.experiments(c.campaign_id))


def test_a_kill_inside_the_campaign_record_leaves_no_campaign(tmp_path: Path) -> None:
    run_dir = _kill_at(tmp_path, "campaign", 1)
    with CampaignStore(run_dir / "store.sqlite") as store:
        assert store.campaign_ids() == []  # no orphan: the campaign and its run record are one commit
    assert not (run_dir / "campaign.json").exists()


def test_a_kill_before_campaign_json_is_written_is_recovered_from_the_store(tmp_path: Path) -> None:
    run_dir = _kill_at(tmp_path, "meta", 1)
    assert not (run_dir / "campaign.json").exists()
    with CampaignStore(run_dir / "store.sqlite") as store:
        (cid,) = store.campaign_ids()
    with Campaign(run_dir, console=Console(quiet=True)) as c:  # the run folder is rebuilt from the store
        assert c.campaign_id == cid
        assert c.run().done
        audit(c.store, cid)
        spec = c.spec
    assert json.loads((run_dir / "campaign.json").read_text())["campaign_id"] == cid
    (run_dir / "campaign.json").unlink()  # as if the kill had come just now: `run` again must not add a campaign
    with pytest.raises(RunDirError, match="already holds a campaign"):
        Campaign.create(spec, run_dir)
    with CampaignStore(run_dir / "store.sqlite") as store:
        assert store.campaign_ids() == [cid]
