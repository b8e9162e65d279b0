from __future__ import annotations

import sqlite3

import pytest

from wetloop.campaign import (
    AppendOnlyViolation,
    CampaignNotFound,
    CampaignStore,
    Experiment,
    Hypothesis,
    Intervention,
    Observation,
    StoreError,
    default_spec_path,
    load_spec,
)


@pytest.fixture()
def store(tmp_path):
    with CampaignStore(tmp_path / "s.sqlite") as s:
        yield s


def test_campaign_round_trip(store) -> None:
    spec = load_spec(default_spec_path())
    cid = store.create_campaign(spec)
    assert store.spec(cid) == spec and store.campaign_ids() == [cid]
    with pytest.raises(StoreError, match="already exists"):
        store.create_campaign(spec, campaign_id=cid)
    with pytest.raises(CampaignNotFound, match="wetloop status"):
        store.spec("nope")


def test_unique_kinds_are_stored_once(store) -> None:
    obs = Observation(experiment_key="k1", status="ok", readouts={"time_in_range": 0.5})
    assert store.append("c", "observation", obs, round=1, key="k1") is True
    again = Observation(experiment_key="k1", status="ok", readouts={"time_in_range": 0.9})
    assert store.append("c", "observation", again, round=1, key="k1") is False
    assert store.observations("c")["k1"].readouts["time_in_range"] == 0.5
    with pytest.raises(StoreError, match="needs a key"):
        store.append("c", "submission", {"x": 1})
    with pytest.raises(StoreError, match="unknown record kind"):
        store.append("c", "gossip", {"x": 1})


def test_store_is_append_only(store, tmp_path) -> None:
    store.append("c", "event", {"text": "hello"}, round=1)
    raw = sqlite3.connect(tmp_path / "s.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE records SET payload='{}'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM records")
    raw.close()
    assert store.records("c", "event")[0].payload == {"text": "hello"}
    assert issubclass(AppendOnlyViolation, StoreError)


def test_latest_hypothesis_version_wins_and_counts(store) -> None:
    h = Hypothesis(id="H1", statement="s", source="offline", round=1)
    store.append("c", "hypothesis", h, round=1, key="H1")
    store.append("c", "hypothesis", h.model_copy(update={"evidence_for": ("yes",)}), round=2, key="H1")
    assert store.hypotheses("c")["H1"].status == "supported"
    assert store.count("c", "hypothesis") == 2 and store.count("c", "hypothesis", round=2) == 1


def test_experiments_by_round(store) -> None:
    x = Intervention(values={"basal": 0.5, "carb_ratio": 20.0})
    e = Experiment(campaign_id="c", round=2, intervention=x, approved_by="p")
    store.append("c", "experiment", e, round=2, key=e.key)
    assert store.experiments("c", round=2) == [e] and store.experiments("c", round=1) == []
