"""A kill between a node's saved writes and the next checkpoint must not end the campaign early.

LangGraph saves a finished node's writes before it writes the next checkpoint. A process killed in
between leaves a state whose `next` is empty although the campaign is not done; `Campaign.run`
once took that for "finished" and exited 0 with submitted experiments never observed (seen as
`assert 4 == 6` in the kill -9 test, and in the world conformance test, about 1 run in 4). Here
the kill is made deterministic: the child process's checkpointer exits the process right after it
has saved the submit node's writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console

from wetloop.agent.runner import Campaign

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "wetloop/worlds/custom/specs/oral_dosing.yaml"

CHILD = """
import os, sys
from langgraph.checkpoint.sqlite import SqliteSaver
from rich.console import Console
from wetloop.agent.graph import build_graph
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, load_spec

class KillAfterSubmitWrites(SqliteSaver):
    def put_writes(self, config, writes, task_id, task_path=""):
        super().put_writes(config, writes, task_id, task_path)
        if any(channel == "branch:to:observe" for channel, _ in writes):
            os._exit(9)  # as SIGKILL would: nothing after this runs

spec = load_spec(sys.argv[1]).with_overrides(budget=Budget(rounds=2, batch=2))
c = Campaign.create(spec, sys.argv[2], console=Console(quiet=True))
c.graph = build_graph(KillAfterSubmitWrites(c._conn))
c.run()
"""


def test_a_kill_after_the_submit_writes_resumes_into_observe(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(SPEC), str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 9, child.stderr[-2000:]
    with Campaign(run_dir, console=Console(quiet=True)) as c:
        cid = c.campaign_id
        assert c.store.count(cid, "submission") == 2 and c.store.count(cid, "observation") == 0
        assert not c.graph.get_state(c._config).next  # the state that fooled the old check
        assert c.run().done
        keys = sorted(e.key for e in c.store.experiments(cid))
        assert len(keys) == 4
        assert sorted(r.key for r in c.store.records(cid, "observation")) == keys
        assert sorted(r.key for r in c.store.records(cid, "submission")) == keys
