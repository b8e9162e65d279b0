"""Hostile and malformed campaign specs: each is refused before anything is written, with one line per
problem that says what is wrong, where in the file, and what to do.

Each case changes one line of the default campaign (`patient_regimen.yaml`) and goes through what
`wetloop run SPEC --dir RUN` does: `load_spec`, then `Campaign.create` (the world's checks). The exact
problem line is asserted, and that the run directory was never created.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wetloop.agent.cli import app
from wetloop.agent.runner import Campaign
from wetloop.campaign import LIMITS, CampaignStore, Observation, SpecError, StoreError, default_spec_path, load_spec

BASE = default_spec_path().read_text(encoding="utf-8").splitlines()


def _line(n: int) -> str:
    return BASE[n - 1]


def _with(line: int, text: str) -> str:
    """The default spec with line `line` (1-based) replaced by `text` (which may span lines)."""
    lines = list(BASE)
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


def _problems(text: str | bytes, tmp_path: Path) -> list[str]:
    """The problem lines `wetloop run` reports for this spec text; asserts nothing was written."""
    path, run_dir = tmp_path / "bad.yaml", tmp_path / "run"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(SpecError) as refused:
        Campaign.create(load_spec(path), run_dir)
    assert not run_dir.exists(), "a refused spec must leave no run directory"
    return refused.value.problems


CASES = [
    # -- finite hard limits and thresholds --------------------------------------------------------
    ("infinite upper limit", 22, "    upper: .inf", "line 22: interventions.0.upper: must be a finite number (not .inf or .nan)"),
    ("NaN lower limit", 21, "    lower: .nan", "line 21: interventions.0.lower: must be a finite number (not .inf or .nan)"),
    (
        "upper limit 1e308",
        22,
        "    upper: 1.0e+308",
        "line 22: interventions.0.upper: 1e+308 is too large; give a number between -1e+15 and 1e+15",
    ),
    ("NaN safety threshold", 36, "    below: .nan", "line 36: safety.0.below: must be a finite number (not .inf or .nan)"),
    ("infinite safety threshold", 36, "    below: -.inf", "line 36: safety.0.below: must be a finite number (not .inf or .nan)"),
    ("infinite cost", 39, "  per_experiment: .inf", "line 39: cost.per_experiment: must be a finite number (not .inf or .nan)"),
    (
        "probability of 1",
        37,
        "    max_probability: 1.0",
        "line 37: safety.0.max_probability: Input should be less than 1",
    ),
    # -- ordered ranges ------------------------------------------------------------------------------
    (
        "reversed hard limits",
        22,
        "    upper: 0.01",
        "line 19: interventions.0: variable 'basal': lower (0.05) must be below upper (0.01)",
    ),
    (
        "start outside the limits",
        23,
        "    start: [0.6, 0.25]",
        "line 19: interventions.0: variable 'basal': start [0.6, 0.25] must lie inside [0.05, 3.0] with start[0] <= start[1]",
    ),
    (
        "reversed glucose range",
        14,
        "  glucose_range: [180.0, 70.0]",
        "line 8: world_options: glucose_range [180, 70] is reversed or empty; give [low, high] mg/dL with low < high",
    ),
    # -- booleans are not numbers ----------------------------------------------------------------
    ("boolean limit", 21, "    lower: true", "line 21: interventions.0.lower: true is not a number; write the number itself"),
    ("boolean rounds", 42, "  rounds: true", "line 42: budget.rounds: true is not a number; write the number itself"),
    ("boolean hours", 10, "  hours: yes", "line 10: world_options.hours: true is not a number; write the number itself"),
    # -- known options, readouts, series, variables ------------------------------------------------
    (
        "unknown world option",
        10,
        "  hourz: 24",
        "line 10: world_options.hourz: not a field here; the fields are: days, glucose_range, hours, meals, patient, "
        "prehistory_basal, pump, regimen, sensor, start_region",
    ),
    (
        "hours 1e9",
        10,
        "  hours: 1.0e+9",
        "line 10: world_options.hours: Input should be less than or equal to 336",
    ),
    (
        "unknown patient",
        9,
        '  patient: "adolescent#099"',
        "line 9: world_options.patient = 'adolescent#099' is not usable; valid choices: ",
    ),
    (
        "unknown readout",
        16,
        "  readout: time_in_rnage",
        "line 16: objective.readout: 'time_in_rnage' is not a readout of world 'simglucose'; known readouts: "
        "['max_glucose', 'mean_glucose', 'min_glucose', 'time_in_range']",
    ),
    (
        "misspelt series",
        35,
        "    series: glucos",
        "line 35: safety.0.series: safety limit 'severe hypoglycaemia' watches series 'glucos', which world "
        "'simglucose' does not report; known series: ['glucose']",
    ),
    (
        "misspelt variable in cost",
        39,
        "  per_unit: {basl: 1.0}",
        "line 39: cost.per_unit: 'basl' is not a continuous or integer variable of the spec; name one of "
        "['basal', 'carb_ratio'] or remove it",
    ),
    (
        "unknown lab adapter",
        44,
        "seed: 0\nlab: {adapter: telnet}",
        "line 45: lab.adapter: no lab adapter named 'telnet'; spec.lab.adapter must be 'local' or one of "
        "['http', 'pylabrobot', 'sila']",
    ),
    (
        "unknown lab option",
        44,
        "seed: 0\nlab: {adapter: http, options: {base_url: 'http://127.0.0.1:1', timeout: 5}}",
        "line 45: lab.options.timeout: not a field here; the fields are: backoff_s, base_url, max_backoff_s, name, "
        "retries, timeout_s",
    ),
    (
        "a token in the spec",
        44,
        "seed: 0\nlab: {adapter: http, options: {base_url: 'http://127.0.0.1:1', token: s3cret}}",
        "line 45: lab.options.token: a spec is stored with its campaign, so it never holds a secret; set "
        "WETLOOP_LAB_TOKEN instead",
    ),
    (
        "mistyped lab option",
        44,
        "seed: 0\nlab: {adapter: http, options: {base_url: 'http://127.0.0.1:1', retries: many}}",
        "line 45: lab.options.retries: Input should be a valid integer",
    ),
    (
        "unknown plate option",
        44,
        "seed: 0\nlab: {adapter: pylabrobot, options: {tip_volume: 300}}",
        "line 45: lab.options.tip_volume: not a field here; the fields are: max_stock_volume_ul, stock_volume_ul, "
        "tip_racks, tip_volume_ul, tips, total_volume_ul, wavelength_nm",
    ),
    (
        "a tip size the deck does not have",
        44,
        "seed: 0\nlab: {adapter: pylabrobot, options: {tip_volume_ul: 77}}",
        "line 45: lab.options.tip_volume_ul: Input should be 10, 50, 300 or 1000",
    ),
    (
        "options for the local lab",
        44,
        "seed: 0\nlab: {adapter: local, options: {workers: 4}}",
        "line 45: lab.options.workers: not a field here; the fields are: address, executor, retries",
    ),
    (
        "unknown top-level field",
        44,
        "seed: 0\nbudjet: {rounds: 2}",
        "line 45: budjet: not a field here; the fields are: at_ceiling, budget, cost, interventions, lab, name, "
        "objective, question, readouts, safety, seed, series, world, world_model, world_options",
    ),
    # -- sane budgets and sizes ------------------------------------------------------------------------
    ("rounds 1e9", 42, "  rounds: 1000000000", "line 42: budget.rounds: Input should be less than or equal to 1000"),
    ("zero batch", 43, "  batch: 0", "line 43: budget.batch: Input should be greater than or equal to 1"),
    (
        "2 MB-style question",
        4,
        "question: " + "why " * 1100,
        "line 4: question: String should have at most 4000 characters; shorten it",
    ),
    (
        "5,000-character name",
        3,
        "name: " + "a" * 5000,
        "line 3: name: String should have at most 64 characters; shorten it",
    ),
    (
        "name that is not a directory name",
        3,
        "name: ../../etc",
        "line 3: name: '../../etc' is not allowed: a campaign name is a directory name: start with a letter or digit, "
        "then letters, digits, _ . -",
    ),
    (
        "too many variables",
        18,
        "interventions:\n" + "".join(f"  - {{name: v{i}, lower: 0, upper: 1}}\n" for i in range(31)),
        "line 18: interventions: Tuple should have at most 32 items after validation, not 33",
    ),
    (
        "too many levels",
        18,
        "interventions:\n  - {name: s, kind: set, items: [A, B], levels: [" + ", ".join(f"l{i}" for i in range(17)) + "]}",
        "line 19: interventions.0.levels: Tuple should have at most 16 items after validation, not 17",
    ),
    # -- seeds -------------------------------------------------------------------------------------
    ("seed -1", 44, "seed: -1", "line 44: seed: Input should be greater than or equal to 0"),
    ("seed 2**70", 44, f"seed: {2**70}", "line 44: seed: Input should be less than 4294967296"),
    ("seed 1.5", 44, "seed: 1.5", "line 44: seed: Input should be a valid integer"),
    # -- YAML --------------------------------------------------------------------------------------
    (
        "a key given twice",
        44,
        "seed: 0\nseed: 1",
        "line 45: seed is given twice (first on line 44); keep one of them",
    ),
]


@pytest.mark.parametrize("line, text, problem", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_spec_is_refused_with_its_problem_line(tmp_path, line, text, problem) -> None:
    problems = _problems(_with(line, text), tmp_path)
    if problem.endswith(": "):  # a list of names follows (the simulator's patients): the start is exact
        assert any(p.startswith(problem) for p in problems), problems
    else:  # (a problem of the file as a whole names the file first)
        assert problem in problems or problems == [f"spec file {tmp_path / 'bad.yaml'}: {problem}"], problems


def test_a_budget_beyond_rounds_x_batch_is_refused(tmp_path) -> None:
    text = _with(42, "  rounds: 1000").replace("  batch: 4", "  batch: 1000")
    assert _problems(text, tmp_path) == [
        "line 41: budget: rounds x batch = 1,000,000 experiments is more than the 100,000 a campaign may plan; "
        "lower rounds or batch"
    ]


def test_every_problem_is_listed_at_once(tmp_path) -> None:
    text = _with(22, "    upper: .inf").replace("seed: 0", "seed: -1").replace("    below: 54.0", "    below: .nan")
    assert _problems(text, tmp_path) == [
        "line 22: interventions.0.upper: must be a finite number (not .inf or .nan)",
        "line 36: safety.0.below: must be a finite number (not .inf or .nan)",
        "line 44: seed: Input should be greater than or equal to 0",
    ]


def test_a_non_utf8_byte_is_named_with_its_line(tmp_path) -> None:
    text = _with(25, "    description: basal r\xe4te").encode("utf-8").replace("ä".encode(), b"\xe4")
    (problem,) = _problems(text, tmp_path)
    assert problem == f"spec file {tmp_path / 'bad.yaml'} is not UTF-8 text: byte 0xe4 on line 25; save the file as UTF-8"


def test_a_yaml_alias_bomb_is_refused_quickly_in_little_memory(tmp_path) -> None:
    """The "billion laughs": nine levels of nine aliases, 360 bytes that would expand to 9**9 strings."""
    bomb = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        bomb.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = _with(8, "world_options:\n" + "\n".join(bomb))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    (problem,) = _problems(text, tmp_path)
    assert time.perf_counter() - started < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB: nothing was expanded
    assert problem == (
        f"spec file {tmp_path / 'bad.yaml'}: line 10: the YAML alias *a is not allowed in a spec "
        "(aliases can expand without bound); write the value out where it is used"
    )


def test_a_file_larger_than_the_limit_is_not_parsed(tmp_path) -> None:
    text = "\n".join(BASE) + "\n#" + "x" * LIMITS["file_bytes"]
    (problem,) = _problems(text, tmp_path)
    assert problem == f"spec file {tmp_path / 'bad.yaml'} is larger than 1,000,000 bytes; a spec is a short text file"


def test_run_refuses_bad_overrides_and_bad_files_without_a_traceback(tmp_path) -> None:
    """Through the CLI: `--seed -1` and `--rounds 0` are spec problems (exit 2, no run directory)."""
    runner = CliRunner()
    for args in (["--seed", "-1"], ["--seed", str(2**70)], ["--rounds", "0"], ["--world-option", "hours=1e9"]):
        run_dir = tmp_path / "X"
        result = runner.invoke(app, ["run", str(default_spec_path()), "--dir", str(run_dir), *args])
        assert isinstance(result.exception, SpecError), (args, result.output)
        assert not run_dir.exists()
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    result = runner.invoke(app, ["run", str(bad), "--dir", str(tmp_path / "X")])
    assert isinstance(result.exception, SpecError) and "is not UTF-8 text: byte 0xff on line 1" in str(result.exception)
    assert not (tmp_path / "X").exists()


def test_the_example_specs_stay_valid() -> None:
    specs = sorted(Path(default_spec_path()).parents[2].glob("**/specs/*.yaml"))
    assert len(specs) >= 6
    for path in specs:
        assert load_spec(path).name


# -- non-finite numbers and the store ------------------------------------------------------------
def test_the_store_refuses_a_non_finite_number(tmp_path) -> None:
    with CampaignStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(StoreError, match="refused to store a event record holding a non-finite number"):
            store.append("c", "event", {"x": float("nan")})
        assert store.count("c", "event") == 0


def test_a_non_finite_readout_is_kept_as_text_and_the_observation_stored(tmp_path) -> None:
    """A lab's NaN readout leaves `readouts` (it is no readout) and stays in `raw` as "nan"; NaN inside
    `raw` becomes null, so SQLite's JSON functions can read every stored observation."""
    obs = Observation(experiment_key="k", status="failed", readouts={"y": float("nan"), "z": 1.0}, raw={"t": [float("inf"), 2.0]})
    assert obs.readouts == {"z": 1.0}
    assert obs.raw == {"t": [None, 2.0], "non_finite_readouts": {"y": "nan"}}
    with CampaignStore(tmp_path / "s.sqlite") as store:
        assert store.append("c", "observation", obs, key="k")
        (row,) = store._db.execute("SELECT json_extract(payload, '$.raw.non_finite_readouts.y') FROM records").fetchall()
        assert row == ("nan",)
        assert store.observations("c")["k"] == obs
