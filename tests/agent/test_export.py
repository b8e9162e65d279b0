"""`wetloop export`: a finished campaign of every registered world, exported in each format, read back
with pandas, anndata and the JSON Schema, and compared with the store field by field."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.screen_data import DATA
from wetloop.agent.cli import app
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.export import (
    ExportError,
    campaign_records,
    export_campaign,
    read_quarantine,
    read_transitions,
    transition_schema,
)
from wetloop.agent.runner import Campaign
from wetloop.campaign import CampaignStore, Decision, SpecError, get_world, world_names
from wetloop.campaign._transitions import SCHEMA_VERSION

pd = pytest.importorskip("pandas")
ad = pytest.importorskip("anndata")
pytest.importorskip("pyarrow")
jsonschema = pytest.importorskip("jsonschema")

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "transition-schema.json"
RAW = {"trajectory": {"times_min": [0, 1], "series": {"x": [1.0]}}, "note": "two times, one value"}


_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module", params=world_names())
def finished(request, tmp_path_factory) -> Path:
    """A finished tiny campaign of each registered world."""
    return _finished(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory) -> Path:
    """A finished tiny campaign of the generic world (for the checks that one world shows)."""
    return _finished("custom", tmp_path_factory)


def _finished(name: str, tmp_path_factory) -> Path:
    """A finished tiny campaign of world `name` (its `example_spec`), made once per module: round 1
    reviewed with an edit of the first selected proposal, then approvals; then one quarantined result,
    recorded as the loop records one."""
    if name in _RUNS:
        return _RUNS[name]
    os.environ.setdefault("WETLOOP_DATA_DIR", str(DATA))
    try:
        world = get_world(name)
    except SpecError as exc:
        pytest.skip(str(exc))
    spec = world.example_spec()
    if spec is None:
        pytest.skip(f"world {name!r} cannot run its example here")
    spec = spec.with_overrides(at_ceiling={"action": "explore"})
    run_dir = tmp_path_factory.mktemp(name) / "run"
    quiet = Console(stderr=True, quiet=True)
    kwargs = {"console": quiet, "world_config": world.light_model_config()}
    with Campaign.create(spec, run_dir, settings=AgentSettings(review=True, lab_workers=2), **kwargs) as c:
        review = c.run().review
        assert review is not None
        first, *rest = review["selected"]
        x = first["values"]
        decisions = [Decision(proposal_key=first["proposal_key"], action="edit", by="person:tester", edited={"values": x})]
        decisions += [Decision(proposal_key=p["proposal_key"], action="approve", by="person:tester") for p in rest]
        outcome = c.review(decisions)
        while not outcome.done:
            assert outcome.review is not None
            keys = [p["proposal_key"] for p in outcome.review["selected"]]
            outcome = c.review([Decision(proposal_key=k, action="approve", by="person:tester") for k in keys])
        key = c.store.experiments(c.campaign_id)[0].key
        c.store.append(
            c.campaign_id, "quarantine", {"experiment_key": key, "reason": "series length mismatch", "raw": RAW}, round=1
        )
    _RUNS[name] = run_dir
    return run_dir


def _store(run_dir: Path) -> tuple[CampaignStore, str]:
    store = CampaignStore(run_dir / "store.sqlite")
    return store, store.campaign_ids()[0]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def test_export_round_trips_through_every_format_and_matches_the_store(finished: Path, tmp_path: Path) -> None:
    store, cid = _store(finished)
    with store:
        paths = export_campaign(store, cid, tmp_path, ["jsonl", "parquet", "h5ad"])
        spec, experiments = store.spec(cid), {e.key: e for e in store.experiments(cid)}
        observations, records = store.observations(cid), campaign_records(store, cid)
        created = {kind: {r.key: r.created_at for r in store.records(cid, kind)} for kind in ("observation", "experiment")}
        selected = {
            (r.round, s.proposal.intervention.key()): s.score for r in store.rankings(cid) for s in r.ranked if s.selected
        }
        hypotheses = store.hypotheses(cid)
    assert paths.n_transitions == len(experiments) == spec.budget.experiments
    for fmt, path in paths.transitions.items():  # the library's reader gives back exactly what was exported
        assert read_transitions(path) == records, fmt

    # pandas, on the Parquet file: every column against the store's own records
    df = pd.read_parquet(paths.transitions["parquet"])
    assert sorted(df["experiment_key"]) == sorted(experiments)
    for row in df.to_dict("records"):
        exp, obs = experiments[row["experiment_key"]], observations[row["experiment_key"]]
        assert row["round"] == exp.round and row["world"] == spec.world and row["campaign_id"] == cid
        assert {v: row[f"intervention.{v}"] for v in spec.variable_names} == {
            v: (json.dumps(x, sort_keys=True) if isinstance(x, dict) else x) for v, x in exp.intervention.values.items()
        }
        assert row["status"] == obs.status == "ok" and row["lab.name"] == obs.lab
        assert all(row[f"readouts.{name}"] == value for name, value in obs.readouts.items())
        if obs.trajectory is not None:
            assert list(row["follow_up.times_min"]) == list(obs.trajectory.times_min)
            for name, values in obs.trajectory.series.items():
                assert list(row[f"follow_up.series.{name}"]) == list(values)
                assert list(row[f"baseline.series.{name}"]) == [values[0]]  # the intervention acts from t = 0
            assert row["dt_min"] == obs.trajectory.times_min[-1]
        score = selected.get((exp.round, exp.intervention.key()))
        if score is not None and score.expected_value is not None:
            assert row["prediction.mean"] == score.expected_value and _same(row["prediction.std"], score.value_std)
        assert row["approval.by"] == exp.approved_by == "person:tester"
        assert [h["id"] for h in json.loads(row["hypotheses"])] == list(exp.hypothesis_ids)
        for h in json.loads(row["hypotheses"]):
            assert h["statement"] == hypotheses[h["id"]].statement
            assert h["evidence_for"] == list(hypotheses[h["id"]].evidence_for)
        assert row["observed_at"].timestamp() == pytest.approx(created["observation"][exp.key], abs=1e-5)
        assert row["approved_at"].timestamp() == pytest.approx(created["experiment"][exp.key], abs=1e-5)
    edited = df[df["approval.action"] == "edit"]
    assert len(edited) == 1 and json.loads(edited["approval.proposed"].iloc[0]) == dict(
        experiments[edited["experiment_key"].iloc[0]].intervention.values
    )

    # anndata: readouts in X, time courses in obsm, the objective's prediction in layers, the spec in uns
    adata = ad.read_h5ad(paths.transitions["h5ad"])
    assert list(adata.obs_names) == [r.experiment_key for r in records]
    assert json.loads(adata.uns["wetloop"]["spec"]) == spec.model_dump(mode="json")
    objective = list(adata.var_names).index(spec.objective.readout)
    assert bool(adata.var["objective"].iloc[objective])
    for i, key in enumerate(adata.obs_names):
        obs, exp = observations[key], experiments[key]
        for name, value in obs.readouts.items():
            assert adata.X[i, list(adata.var_names).index(name)] == value
        if obs.trajectory is not None:
            for name, values in obs.trajectory.series.items():
                assert adata.obsm[f"follow_up.series.{name}"][i][: len(values)].tolist() == list(values)
        score = selected.get((exp.round, exp.intervention.key()))
        mean = score.expected_value if score is not None and score.expected_value is not None else float("nan")
        assert _same(float(adata.layers["predicted_mean"][i, objective]), mean)

    # the JSON Schema: every line validates against its record's definition; a broken one does not
    schema = json.loads(paths.schema.read_text())
    transition = jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/TransitionRecord"})
    quarantine = jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/QuarantineRecord"})
    lines = [json.loads(line) for line in paths.transitions["jsonl"].read_text().splitlines()]
    assert len(lines) == len(records)
    for line in lines:
        transition.validate(line)
    broken = {k: v for k, v in lines[0].items() if k != "experiment_key"}
    assert not transition.is_valid(broken)
    assert not transition.is_valid({**lines[0], "status": "lost"})

    # the quarantined result: apart from the transitions, with its raw payload as stored
    assert paths.n_quarantined == 1
    (q,) = read_quarantine(tmp_path)
    assert q.raw == RAW and q.reason == "series length mismatch" and q.experiment_key == records[0].experiment_key
    for line in paths.quarantine.read_text().splitlines():
        quarantine.validate(json.loads(line))
        assert not transition.is_valid(json.loads(line))


def test_published_schema_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == transition_schema(), (
        "regenerate: wetloop export --schema > docs/transition-schema.json"
    )
    assert transition_schema()["version"] == SCHEMA_VERSION


def test_cli_exports_a_run_and_prints_the_schema(custom_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(custom_run), "--format", "parquet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "transitions.parquet").is_file() and (tmp_path / "quarantine.jsonl").is_file()
    assert not (tmp_path / "transitions.jsonl").exists()
    assert "transitions" in result.output
    printed = CliRunner().invoke(app, ["export", "--schema"])
    assert json.loads(printed.output) == transition_schema()


def test_missing_extra_is_a_clear_error_before_anything_is_written_and_jsonl_needs_none(
    custom_run: Path, tmp_path: Path, monkeypatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("pyarrow", "anndata") else real(name, *a))
    store, cid = _store(custom_run)
    with store:
        with pytest.raises(ExportError, match=r'pip install "wetloop\[export\]"'):
            export_campaign(store, cid, tmp_path / "out", ["jsonl", "parquet"])
        assert not (tmp_path / "out").exists()
        paths = export_campaign(store, cid, tmp_path / "plain", ["jsonl"])
    assert len(read_transitions(paths.transitions["jsonl"])) == paths.n_transitions


def test_reading_a_foreign_or_newer_export_says_what_is_wrong(custom_run: Path, tmp_path: Path) -> None:
    store, cid = _store(custom_run)
    with store:
        paths = export_campaign(store, cid, tmp_path, ["jsonl"])
    newer = tmp_path / "newer" / "transitions.jsonl"
    newer.parent.mkdir()
    newer.write_text(paths.transitions["jsonl"].read_text().replace('"schema_version":"1.0"', '"schema_version":"2.0"'))
    with pytest.raises(ExportError, match="schema version 2.0"):
        read_transitions(newer)
    with pytest.raises(ExportError, match="does not exist"):
        read_transitions(tmp_path / "nothing-here.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="holds no exported transitions"):
        read_transitions(tmp_path / "empty")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema_version": "1.0"}\n')
    with pytest.raises(ExportError, match="could not be read"):
        read_transitions(bad)


def test_prior_data_gives_the_first_round_a_world_model_and_stays_in_every_refit(custom_run: Path, tmp_path: Path) -> None:
    store, cid = _store(custom_run)
    with store:
        spec = store.spec(cid)
        paths = export_campaign(store, cid, tmp_path / "export", ["parquet"])
    prior = (str(paths.transitions["parquet"]),)
    world = get_world(spec.world)
    quiet = Console(stderr=True, quiet=True)
    with Campaign.create(spec.with_overrides(seed=1), tmp_path / "run", settings=AgentSettings(prior=prior), console=quiet) as c:
        assert c.run().done
        models = [(r.round, r.payload["n_data"]) for r in c.store.records(c.campaign_id, "model")]
        rankings = c.store.rankings(c.campaign_id)
        own = len(world.fit_data([(e.intervention, o) for e, o in _pairs(c.store, c.campaign_id)]))
    n_prior = paths.n_transitions
    assert models[0] == (0, n_prior)  # fitted on the prior data alone, before any result of its own
    assert rankings[0].round == 1 and rankings[0].model_version is not None
    assert models[-1] == (spec.budget.rounds, n_prior + own)


def _pairs(store: CampaignStore, cid: str) -> list:
    obs = store.observations(cid)
    return [(e, obs[e.key]) for e in store.experiments(cid) if e.key in obs]


def test_prior_data_of_another_world_or_space_is_refused_before_anything_is_written(custom_run: Path, tmp_path: Path) -> None:
    store, cid = _store(custom_run)
    with store:
        spec = store.spec(cid)
        paths = export_campaign(store, cid, tmp_path / "export", ["jsonl"])
    text = paths.transitions["jsonl"].read_text()
    other_world = tmp_path / "other-world.jsonl"
    other_world.write_text(text.replace('"world":"custom"', '"world":"sbml"'))
    with pytest.raises(ExportError, match="world"):
        Campaign.create(spec, tmp_path / "a", settings=AgentSettings(prior=(str(other_world),)))
    assert not (tmp_path / "a").exists()
    name = spec.variable_names[0]
    other_space = tmp_path / "other-space.jsonl"
    other_space.write_text(text.replace(f'"{name}":', '"renamed_variable":'))
    with pytest.raises(ExportError, match="renamed_variable"):
        Campaign.create(spec, tmp_path / "b", settings=AgentSettings(prior=(str(other_space),)))
    assert not (tmp_path / "b").exists()
