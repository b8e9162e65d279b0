"""The `wetloop` CLI on real (shortened) simglucose days: run with review, review by flags, status, report."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from wetloop.agent.cli import app
from wetloop.agent.errors import ReviewError
from wetloop.campaign import CampaignStore

from .test_crash_resume import FAST_ENV, short_spec

runner = CliRunner()


@pytest.fixture()
def fast_env(monkeypatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)


def test_review_by_flags_then_finish(tmp_path, fast_env) -> None:
    spec, run_dir = short_spec(tmp_path, rounds=2, batch=2), tmp_path / "run"
    first = runner.invoke(app, ["run", str(spec), "--dir", str(run_dir), "--review"])
    assert first.exit_code == 0, first.output
    assert "awaits review" in first.output and "proposals awaiting review" in first.output

    refused = runner.invoke(app, ["review", "--dir", str(run_dir), "--edit", "1:basal=99", "--approve-all"])
    assert isinstance(refused.exception, ReviewError) and "outside the hard limits" in str(refused.exception)
    missing = runner.invoke(app, ["review", "--dir", str(run_dir), "--approve", "1"])
    assert isinstance(missing.exception, ReviewError) and "no decision for proposal #2" in str(missing.exception)
    with CampaignStore(run_dir / "store.sqlite") as store:
        assert store.count(store.campaign_ids()[0], "submission") == 0  # refused reviews submit nothing

    second = runner.invoke(
        app, ["review", "--dir", str(run_dir), "--approve", "1", "--reject", "2=too close to #1", "--by", "ada"]
    )
    assert second.exit_code == 0, second.output
    assert "round 2 awaits review" in second.output
    _shows_statements(second.output, run_dir, 2)
    edit = "1:basal=0.3,carb_ratio=30; gentler basal, carb_ratio=30 as before"  # the reason may hold commas and '='
    last = runner.invoke(app, ["review", "--dir", str(run_dir), "--edit", edit, "--approve-all"])
    assert last.exit_code == 0, last.output
    assert "report:" in last.output and (run_dir / "report" / "report.html").is_file()

    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        decisions = store.decisions(cid)
        assert [(d.action, d.by) for d in decisions[:2]] == [("approve", "person:ada"), ("reject", "person:ada")]
        assert decisions[1].reason == "too close to #1"
        assert len(store.experiments(cid, round=1)) == 1 and len(store.experiments(cid, round=2)) == 2
        assert {"basal": 0.3, "carb_ratio": 30.0} in [e.intervention.values for e in store.experiments(cid, round=2)]
        edited = [d for d in store.decisions(cid, round=2) if d.action == "edit"]
        assert [d.reason for d in edited] == ["gentler basal, carb_ratio=30 as before"]
    status = runner.invoke(app, ["status", "--dir", str(run_dir)])
    assert status.exit_code == 0 and "finished" in status.output and "3 approved, 3 submitted" in status.output
    assert "3 ok" in status.output and "{" not in status.output  # a table of sentences, not a dict dump
    report = runner.invoke(app, ["report", "--dir", str(run_dir)])
    assert report.exit_code == 0 and "summary.md" in report.output


def _shows_statements(output: str, run_dir, rnd: int) -> None:
    """Under the review table, each proposal's hypothesis by its statement (shortened at a word), not its id."""
    from wetloop.agent._cli_review import STATEMENT_WIDTH

    with CampaignStore(run_dir / "store.sqlite") as store:
        cid = store.campaign_ids()[0]
        hyps = store.hypotheses(cid)
        ranking = [r for r in store.rankings(cid) if r.round == rnd][-1]
    flat = " ".join(output.split())  # the console wraps a long line
    assert ranking.selected and all(r.proposal.hypothesis_id in hyps for r in ranking.selected)
    for i, r in enumerate(ranking.selected, start=1):
        statement = " ".join(hyps[r.proposal.hypothesis_id].statement.split())
        shown = textwrap.shorten(statement, STATEMENT_WIDTH, placeholder=" …")
        assert f"#{i} hypothesis: {shown}" in flat, (shown, output)
        assert len(statement) <= STATEMENT_WIDTH or statement not in flat  # a long one is shortened
    assert not any(f" {hid} " in f" {flat} " for hid in hyps)


def test_review_help_says_how_an_edit_carries_a_reason() -> None:
    result = runner.invoke(app, ["review", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "a reason may follow after ';'" in " ".join(result.output.split())


def test_errors_speak_to_a_person(tmp_path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "wetloop.agent.cli", "run", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    nothing = subprocess.run(
        [sys.executable, "-m", "wetloop.agent.cli", "status", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert nothing.returncode == 2 and "holds no campaign" in nothing.stderr


def test_lab_serve_without_the_server_extra_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the `server` extra were not installed
    result = runner.invoke(app, ["lab", "serve", "--port", "0"])
    assert result.exit_code == 2
    assert 'pip install "wetloop[server]"' in result.output and "fastapi" in result.output


def test_world_options_are_overridden_by_key_and_read_as_yaml() -> None:
    from wetloop.agent.cli import _with_overrides, _world_options
    from wetloop.campaign import default_spec_path, load_spec

    options = _world_options(["patient=adult#001", "hours=12", "glucose_range=[80, 160]", "sensor= Navigator "])
    assert options == {"patient": "adult#001", "hours": 12, "glucose_range": [80, 160], "sensor": "Navigator"}
    spec = _with_overrides(load_spec(default_spec_path()), None, None, 3, options)
    assert spec.seed == 3 and spec.world_options["patient"] == "adult#001" and spec.world_options["pump"] == "Insulet"
    refused = runner.invoke(app, ["run", "--world-option", "patient"])
    assert refused.exit_code == 2 and "not key=value" in refused.output


def test_lab_serve_asks_which_world() -> None:
    result = runner.invoke(app, ["lab", "serve", "--port", "0"])
    assert result.exit_code == 2 and "--world NAME" in result.output and "simglucose" in result.output


def test_worlds_add_their_bench_commands_and_help_imports_no_world() -> None:
    listed = runner.invoke(app, ["bench", "--help"])
    assert listed.exit_code == 0 and "patient" in listed.output and "screen" in listed.output
    probe = "import sys; from wetloop.agent.cli import main; sys.argv = ['wetloop', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
    probe += "print(sorted(m for m in sys.modules if m.startswith('wetloop.worlds') or m in ('torch', 'simglucose')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
