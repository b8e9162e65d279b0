"""Screen data hygiene: spreadsheet dates read back as genes, gene-pair screens refused, screens found by name."""

import numpy as np
import pytest

from tests.screen_data import DATA, data_env, needs_data  # noqa: F401
from wetloop.campaign import DataFileError, SpecError
from wetloop.worlds.crispr_screen import SymbolMap, load_screen
from wetloop.worlds.crispr_screen._hgnc import screen_problems, spreadsheet_date

# A small HGNC: the real families behind the usual spreadsheet dates
TINY = SymbolMap(
    approved={"MARCHF1", "MTARC1", "MARCHF3", "SEPTIN2", "SEPTIN6", "DELEC1", "BHLHE40", "SELENOF", "XRN1", "STAT1"},
    previous={"MARCH1": ["MARCHF1"], "MARC1": ["MTARC1"], "MARCH3": ["MARCHF3"], "SEPT2": ["SEPTIN2"], "DEC1": ["DELEC1"]},
    alias={"DEC1": ["BHLHE40"], "SEP15": ["SELENOF"], "SEP2": ["SEPTIN6"], "SEP1": ["XRN1"]},
)


@pytest.mark.parametrize(
    ("text", "date"),
    [("1-Dec", ("december", 1)), ("01.Mar", ("march", 1)), ("10-Mar", ("march", 10)), ("Sep-15", ("september", 15))],
)
def test_spreadsheet_dates_are_recognised(text, date):
    assert spreadsheet_date(text) == date


@pytest.mark.parametrize("text", ["STAT1", "MARCH1", "1-Foo", "0-Mar", "APOBEC3A_B", "Mar-2019", "C4B_2"])
def test_symbols_are_not_dates(text):
    assert spreadsheet_date(text) is None


def test_dates_read_back_through_previous_symbols_first():
    assert TINY.undate("3-Mar") == ("MARCHF3", ("MARCHF3",))
    assert TINY.undate("1-Dec") == ("DELEC1", ("DELEC1",))  # DEC1: previous symbol of DELEC1 beats alias of BHLHE40
    assert TINY.undate("2-Sep") == ("SEPTIN2", ("SEPTIN2",))  # SEPT2 (previous) beats SEP2 (alias of SEPTIN6)
    assert TINY.undate("Sep-15") == ("SELENOF", ("SELENOF",))  # only an alias fits
    assert TINY.undate("1-Mar") == (None, ("MARCHF1", "MTARC1"))  # MARCH1 or MARC1: ambiguous
    assert TINY.undate("7-Jul") == (None, ())
    assert TINY.undate("STAT1") is None


def test_map_many_reports_found_mapped_and_left_dates():
    symbols = ["STAT1", "03.Mar", "1-Mar", "Sep-15", "2-Sep", "SEPTIN2", "9-Oct"]
    mapped, report = TINY.map_many(symbols)
    # 2-Sep reads back as SEPTIN2, which another row names: that row keeps it (before or after the date)
    assert mapped == ["STAT1", "MARCHF3", None, "SELENOF", None, "SEPTIN2", None]
    assert report.dates == ("03.Mar", "1-Mar", "Sep-15", "2-Sep", "9-Oct")
    assert report.dates_mapped == {"03.Mar": "MARCHF3", "Sep-15": "SELENOF"}
    assert report.dates_left == ("1-Mar", "2-Sep", "9-Oct")
    assert report.date_candidates == {"1-Mar": ("MARCHF1", "MTARC1")}
    assert report.dates_summary() == {"found": 5, "mapped": 2, "left": 3}
    assert set(report.unmapped) == {"1-Mar", "9-Oct"} and report.merged == ("2-Sep",)
    assert TINY.map_many(["2-Sep", "SEPT2"])[0] == [None, "SEPTIN2"]  # the named row wins, whatever the order


def _screen_dir(tmp_path, name, symbols, movers=None):
    (tmp_path / "task_prompts").mkdir(exist_ok=True)
    (tmp_path / f"ground_truth_{name}.csv").write_text(
        "Gene,Score\n" + "".join(f'"{g}",{i / 10}\n' for i, g in enumerate(symbols))
    )
    (tmp_path / "task_prompts" / f"{name}.json").write_text('{"Task": "t", "Measurement": "m"}')
    if movers is not None:
        np.save(tmp_path / f"topmovers_{name}.npy", np.array(movers))
    return tmp_path


@needs_data
def test_load_screen_reads_dates_back_and_keeps_a_hit_listed_as_a_date(tmp_path, data_env):
    d = _screen_dir(tmp_path, "dated", ["STAT1", "JAK1", "1-Dec", "10-Mar", "2-Mar", "TP53"], movers=["10-Mar", "JAK1"])
    s = load_screen("dated", d)
    assert s.genes == ("STAT1", "JAK1", "DELEC1", "MARCHF10", "TP53")
    assert s.mapping.dates_summary() == {"found": 3, "mapped": 2, "left": 1}
    assert s.mapping.date_candidates == {"2-Mar": ("MARCHF2", "MTARC2")}
    assert s.hits == {"MARCHF10", "JAK1"}


@pytest.mark.parametrize(
    "rows",
    [
        [f"('G{i}', 'H{i}')" for i in range(10)],  # BioDiscoveryAgent's Horlbeck file
        [f"G{i}_H{i}" for i in range(10)],
    ],
)
@needs_data
def test_a_gene_pair_screen_is_refused_naming_the_format(tmp_path, data_env, rows):
    d = _screen_dir(tmp_path, "Horlbeck", rows)
    with pytest.raises(DataFileError, match=r"gene-pair screen \(BioDiscoveryAgent's Horlbeck format: 10 of 10 rows"):
        load_screen("Horlbeck", d)
    assert "single-gene screens" in screen_problems("Horlbeck", d)[0]


@needs_data
def test_symbols_holding_an_underscore_are_not_pairs(tmp_path, data_env):
    """A few approved symbols hold '_' (APOBEC3A_B, C4B_2) and GeneDisco names PAR genes CD99_X: a screen
    where they are a minority loads."""
    d = _screen_dir(tmp_path, "par", ["APOBEC3A_B", "C4B_2", "CD99_X", "STAT1", "JAK1", "TP53", "IRF1"])
    s = load_screen("par", d)
    assert {"APOBEC3A_B", "C4B_2", "STAT1"} <= set(s.genes) and screen_problems("par", d) == []


@needs_data
def test_a_file_without_a_single_gene_is_refused(tmp_path, data_env):
    d = _screen_dir(tmp_path, "nogenes", ["NOTAGENE1", "NOTAGENE2"])
    with pytest.raises(DataFileError, match="none of the 2 symbols"):
        load_screen("nogenes", d)
    (tmp_path / "ground_truth_empty.csv").write_text("Gene,Score\n")
    with pytest.raises(DataFileError, match="has no rows"):
        load_screen("empty", tmp_path)


@needs_data
def test_a_pair_screen_spec_is_refused_before_the_campaign_writes_anything(tmp_path, data_env):
    from wetloop.agent.runner import Campaign
    from wetloop.worlds.crispr_screen._bench import screen_spec

    (tmp_path / "data").mkdir()
    d = _screen_dir(tmp_path / "data", "Horlbeck", [f"G{i}_H{i}" for i in range(10)])
    spec = screen_spec("Horlbeck", str(d), 1, 4, 0)
    with pytest.raises(SpecError, match="world_options.screen: .*gene-pair screen"):
        Campaign.create(spec, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@needs_data
def test_every_screen_in_the_data_dir_is_found_by_name(monkeypatch):
    """With WETLOOP_DATA_DIR set, screens load by name: the registered ones (verified) and the converted
    GeneDisco screens (no hit list: the top 5% by |score|)."""
    monkeypatch.setenv("WETLOOP_DATA_DIR", str(DATA))
    for name in ("Zhuang19_NK", "Zhu21_SARSCoV2"):
        s = load_screen(name)
        assert s.hits_source == "top 5% by |score|" and len(s.hits) == round(0.05 * len(s.genes))
    zhuang = load_screen("Zhuang19_NK").mapping
    # measured on the published file: 24 dates, 2-Mar ambiguous (MARCH2 or MARC2), 4-Sep's gene already named
    assert zhuang.dates_summary() == {"found": 24, "mapped": 22, "left": 2}
    assert set(zhuang.dates_left) == {"2-Mar", "4-Sep"} and zhuang.dates_mapped["1-Dec"] == "DELEC1"
    assert load_screen("Scharenberg22").mapping.dates == ()
    assert screen_problems("IFNG") == []
