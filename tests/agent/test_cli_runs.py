"""Which campaign a command without --dir acts on, and what a campaign stopped by an error says.

`review` means the newest campaign awaiting review, `resume` the newest not finished, `status` and
`report` the newest of all; when that is not simply the newest folder the CLI says which it took."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from wetloop.agent.cli import app

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "wetloop/worlds/custom/specs/combination.yaml"
runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _touch_later(run_dir: Path, seconds: float) -> None:
    """Order run folders by age without sleeping: the newest folder is the one whose campaign.json is newest."""
    stamp = time.time() + seconds
    os.utime(run_dir / "campaign.json", (stamp, stamp))


def test_commands_without_dir_pick_the_campaign_they_apply_to(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_RUNS_DIR", str(tmp_path))
    waiting, finished = tmp_path / "waiting", tmp_path / "finished"
    args = ["--rounds", "1", "--batch", "2"]
    assert runner.invoke(app, ["run", str(SPEC), "--dir", str(waiting), "--review", *args]).exit_code == 0
    assert runner.invoke(app, ["run", str(SPEC), "--dir", str(finished), *args]).exit_code == 0
    _touch_later(finished, 10)  # the finished campaign is the newest folder

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "finished" in status.output and str(finished) in "".join(status.output.split())

    review = runner.invoke(app, ["review", "--approve-all"])
    assert review.exit_code == 0, review.output
    text = _flat(review.output)
    assert f"using {waiting}, the newest campaign awaiting review (newer: finished (finished))" in text
    assert runner.invoke(app, ["status", "--dir", str(waiting)]).output.count("waiting for review") == 0

    nothing = runner.invoke(app, ["review", "--approve-all"])  # both finished now: nothing to review, named
    assert nothing.exit_code != 0
    assert "no campaign under" in _flat(str(nothing.exception) + nothing.output)
    assert "awaiting review" in _flat(str(nothing.exception) + nothing.output)


def test_a_campaign_stopped_by_an_unreachable_lab_says_how_to_resume_and_is_the_resume_default(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WETLOOP_RUNS_DIR", str(tmp_path))
    spec = yaml.safe_load(SPEC.read_text())
    spec["lab"] = {"adapter": "http", "options": {"base_url": "http://127.0.0.1:9", "retries": 0}}  # nothing listens on port 9
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    stopped, finished = tmp_path / "stopped", tmp_path / "finished"

    first = runner.invoke(app, ["run", str(spec_file), "--dir", str(stopped), "--rounds", "1", "--batch", "2"])
    message = _flat(str(first.exception))
    assert first.exit_code != 0 and "did not answer" in message
    assert f"The campaign is saved; `wetloop resume --dir {stopped}` continues it." in message

    assert runner.invoke(app, ["run", str(SPEC), "--dir", str(finished), "--rounds", "1", "--batch", "2"]).exit_code == 0
    _touch_later(finished, 10)
    again = runner.invoke(app, ["resume"])  # the newest folder is finished: resume takes the stopped one
    assert f"using {stopped}, the newest campaign left to resume" in _flat(again.output)
    assert "resuming" in again.output and "did not answer" in _flat(str(again.exception))
