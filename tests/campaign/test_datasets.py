import hashlib

import httpx
import pytest

from tests.screen_data import DATA, data_env, needs_data  # noqa: F401
from wetloop.campaign import ChecksumMismatch, DataFileError
from wetloop.worlds.crispr_screen import DATA_FILES, fetch_data, load_screen

PROMPT = "screens/task_prompts/IFNG.json"


def _client(body: bytes) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda req: httpx.Response(200, content=body)))


@needs_data
def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.delenv("WETLOOP_DATA_DIR", raising=False)
    monkeypatch.setenv("WETLOOP_CACHE_DIR", str(tmp_path))
    body = (DATA / PROMPT).read_bytes()
    path = fetch_data(PROMPT, client=_client(body))
    assert path.read_bytes() == body and path.is_relative_to(tmp_path)
    assert fetch_data(PROMPT) == path  # cached: no client needed


def test_bad_checksum_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("WETLOOP_DATA_DIR", raising=False)
    monkeypatch.setenv("WETLOOP_CACHE_DIR", str(tmp_path))
    with pytest.raises(ChecksumMismatch, match="WETLOOP_DATA_DIR"):
        fetch_data(PROMPT, client=_client(b"tampered"))
    assert not list(tmp_path.rglob("IFNG.json"))


@needs_data
def test_registry_checksums_match_the_shared_copies():
    for rel, f in DATA_FILES.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest()[:16] == f.sha256, rel


@needs_data
def test_load_screen_maps_symbols_and_hits(data_env):
    s = load_screen("IFNG")
    assert len(s.genes) > 18000 and len(set(s.genes)) == len(s.genes)
    assert 900 <= len(s.hits) <= 920 and s.hits <= set(s.genes)
    assert s.n_unmapped > 0 and s.mapping.renamed and "Interferon" in s.task


@needs_data
def test_user_screen_without_topmovers(tmp_path, data_env):
    (tmp_path / "task_prompts").mkdir()
    (tmp_path / "ground_truth_mini.csv").write_text(
        "Gene,Score\n"
        + "".join(f"{g},{i}\n" for i, g in enumerate(["STAT1", "JAK1", "NOTAGENE1", "TP53"] + [f"RPL{i}" for i in range(3, 16)]))
    )
    (tmp_path / "task_prompts" / "mini.json").write_text('{"Task": "t", "Measurement": "m"}')
    s = load_screen("mini", tmp_path)
    assert s.mapping.unmapped == ("NOTAGENE1",) and s.hits_source.startswith("top 5%") and len(s.hits) == 1
    with pytest.raises(DataFileError):
        load_screen("absent", tmp_path)


@needs_data
def test_a_hit_listed_under_a_merged_symbol_is_kept(tmp_path, data_env):
    """STAT1 listed twice (the second row merged away) and a mover named by a previous symbol whose
    approved name also has its own row: both movers are hits of the library's approved genes."""
    import numpy as np

    (tmp_path / "task_prompts").mkdir()
    (tmp_path / "ground_truth_dup.csv").write_text("Gene,Score\nSTAT1,3.0\nJAK1,1.0\nSTAT1,2.5\nTP53,0.1\n")
    (tmp_path / "task_prompts" / "dup.json").write_text('{"Task": "t", "Measurement": "m"}')
    np.save(tmp_path / "topmovers_dup.npy", np.array(["STAT1", "JAK1"]))
    s = load_screen("dup", tmp_path)
    assert s.genes == ("STAT1", "JAK1", "TP53") and s.mapping.merged == ("STAT1",)
    assert s.hits == {"STAT1", "JAK1"}
