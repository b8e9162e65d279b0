"""What the CLI tells a person next: hints in the form they typed, a finished campaign left alone,
and Ctrl-C answered with how to go on (no worker tracebacks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from wetloop.agent.cli import app

from .test_crash_resume import FAST_ENV, _count, short_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "wetloop/worlds/custom/specs/combination.yaml"
runner = CliRunner()


def test_hints_name_the_command_the_person_used_and_a_finished_campaign_is_left_alone(tmp_path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    monkeypatch.setenv("WETLOOP_COMMAND", "./dev")
    first = runner.invoke(app, ["run", str(SPEC), "--dir", str(run_dir), "--review", "--rounds", "1", "--batch", "2"])
    assert first.exit_code == 0 and f"./dev review --dir {run_dir}" in first.output.replace("\n", "")
    done = runner.invoke(app, ["review", "--dir", str(run_dir), "--approve-all"])
    assert done.exit_code == 0, done.output
    report = run_dir / "report" / "report.html"
    before = report.stat().st_mtime_ns
    again = runner.invoke(app, ["resume", "--dir", str(run_dir)])
    assert again.exit_code == 0 and "is finished" in again.output and "resuming" not in again.output
    assert report.stat().st_mtime_ns == before  # the report is not rewritten


def test_ctrl_c_says_how_to_resume_and_workers_print_no_traceback(tmp_path) -> None:
    """Ctrl-C once the workers are up (after the first results): a worker still importing at the very
    start of a campaign can print a traceback, because it sets SIGINT aside only in its initializer.
    Ignoring SIGINT in the parent around each spawn would close that window but lose a Ctrl-C pressed
    meanwhile (seen once in CI: the campaign ran on to the end)."""
    spec, run_dir = short_spec(tmp_path, rounds=3, batch=2), tmp_path / "run"
    env = {**os.environ, **FAST_ENV, "WETLOOP_LAB_CACHE_DIR": str(tmp_path / "cache"), "WETLOOP_COMMAND": "./dev"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wetloop.agent.cli", "run", str(spec), "--dir", str(run_dir)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 240
        while _count(run_dir / "store.sqlite", "observation") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the campaign did not start in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # 130 is what a shell shows either way: exit(130), or an end by SIGINT itself (-2 here), which CPython
    # takes when a KeyboardInterrupt reaches it while the process winds down after the message
    assert proc.returncode in (130, -signal.SIGINT), stderr[-2000:]
    assert f"interrupted; `./dev resume --dir {run_dir}` continues it" in stderr.replace("\n", "")
    assert "KeyboardInterrupt" not in stderr and "Traceback" not in stderr
