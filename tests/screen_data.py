"""Where the shared data lives for the screen tests (never copied into the repo)."""

from pathlib import Path

import pytest

DATA = (Path(__file__).resolve().parents[1] / "../shared/data").resolve()
needs_data = pytest.mark.skipif(
    not (DATA / "screens").is_dir(), reason=f"shared data not found at {DATA} (CI puts shared/ beside the repo)"
)


@pytest.fixture
def data_env(monkeypatch):
    monkeypatch.setenv("WETLOOP_DATA_DIR", str(DATA))
    return DATA
