"""`wetloop bench adapters`: the same short campaign in-process and through the HTTP lab server (real
simglucose, 2-hour days); adapters that cannot start are listed with the reason, not failed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.console import Console

from wetloop.agent.bench_adapters import bench_adapters, print_adapters_bench, short_day, simulation_seconds
from wetloop.campaign import default_spec_path, load_spec
from wetloop.lab_adapters import ADAPTERS


def timed(start: float, end: float) -> SimpleNamespace:
    return SimpleNamespace(raw={"started_at": start, "finished_at": end})


def test_simulation_time_is_the_union_of_the_days_clipped_to_the_campaign() -> None:
    days = [timed(10, 14), timed(12, 16), timed(20, 21), timed(0, 11), SimpleNamespace(raw={}), timed(29, 40)]
    # [10, 16] from three overlapping days (one starts before the campaign), [20, 21], [29, 30]
    assert simulation_seconds(days, start=10, end=30) == pytest.approx(6 + 1 + 1)
    assert simulation_seconds([], 0, 5) == 0


def test_bench_adapters_measures_http_against_in_process_and_skips_what_cannot_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(ADAPTERS, "nowhere", ("wetloop.lab_adapters.nowhere:NoLab", "nowhere"))
    spec = short_day(load_spec(default_spec_path()), rounds=1, batch=2, hours=2.0)
    figures = bench_adapters(spec, tmp_path, adapters=["http", "nowhere"], workers=2, console=Console(quiet=True))

    local, http = figures["runs"]
    assert local["lab"] == "in-process" and http["lab"] == "http"
    for row in (local, http):
        assert row["ok"] == row["experiments"] == 2 == row["timed_results"]
        assert 0 < row["simulation_s"] < row["wall_s"] and row["overhead_s"] > 0
    assert http["same_experiments"] and local["ratio"] == 1.0
    assert http["ratio"] == pytest.approx(http["overhead_s"] / local["overhead_s"], rel=0.01)
    assert http["requests"] >= http["lab_calls"] >= 2 * 2  # each experiment: a submit and at least one poll
    assert local["requests"] is None
    assert figures["skipped"] == [
        {"adapter": "nowhere", "reason": 'wetloop.lab_adapters.nowhere is missing: pip install "wetloop[nowhere]"'}
    ]

    console = Console(record=True, width=80)
    print_adapters_bench(figures, console)
    text = console.export_text()
    assert "in-process" in text and "http" in text and "nowhere: skipped" in text and "…" not in text


def test_the_bench_fits_the_light_model_its_world_offers() -> None:
    """The bench is about lab round trips: it fits the world's `light_model_config()` (None: the default)."""
    from wetloop.campaign import get_world

    from .conftest import FAST_WORLD

    assert get_world("simglucose").light_model_config() == FAST_WORLD
    assert get_world("custom").light_model_config() is None
