"""World `cell`: the stepper against scanpy's, clamps, fates, seeds, AnnData, the spec, edits, oracle, bench."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scanpy")

from rich.console import Console

import tests.test_import_direction as import_direction
from wetloop.agent._edits import parse_edit_text
from wetloop.agent.configuration import AgentSettings
from wetloop.agent.errors import ReviewError
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, CampaignSpec, ProposalContext, SpecError, get_world, load_spec
from wetloop.worlds.cell import FATES, SPECS_DIR, CellOptions, all_cocktails, load_network, oracle, run_experiment
from wetloop.worlds.cell._bench import bench_cell, random_expectation
from wetloop.worlds.cell._experiment import fates_of, progenitor_state
from wetloop.worlds.cell._parts import PartsModel
from wetloop.worlds.cell._proposer import CocktailProposer
from wetloop.worlds.cell._world import GENES

SPEC = SPECS_DIR / "reprogram.yaml"
SMALL = {"cells": 40, "steps": 300, "window": [0, 150], "record_every": 30}


def _spec(**options) -> CampaignSpec:
    spec = load_spec(SPEC)
    return spec.with_overrides(world_options={**spec.world_options, **options})


def _options(**kw) -> CellOptions:
    return CellOptions(**{**SMALL, **kw})


# -- the stepper --------------------------------------------------------------------------------------
def test_network_is_scanpys_model() -> None:
    net = load_network()
    assert net.genes == GENES
    assert net.inv_time_step == 0.02
    assert "Pu.1" in net.rules["Gata1"]  # the rule text comes from scanpy's parser


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_stepper_reproduces_scanpy_step_for_step(seed: int) -> None:
    """Same start, same noise draw: every step of every gene equals scanpy's `GRNsim.sim_model` exactly."""
    from scanpy.tools._sim import GRNsim

    net = load_network()
    sim = GRNsim(dim=11, model="krumsiek11", params={"seed": 0})
    x0 = progenitor_state(net, 1, np.random.default_rng(seed))[0]
    np.random.seed(100 + seed)
    theirs = sim.sim_model(800, X0=x0, noiseDyn=0.001)
    np.random.seed(100 + seed)
    normals = np.random.randn(800, 11)[:, None, :]
    ours = net.simulate(x0[None], 800, 0.001, normals=normals)[:, 0]
    assert np.array_equal(ours, theirs)
    assert np.ptp(theirs[-1]) > 0.5  # a cell that went somewhere: the comparison is not of constants


def test_stepper_steps_many_cells_as_one() -> None:
    """A population is the same as its cells stepped one by one (vectorised, not coupled)."""
    net = load_network()
    x0 = progenitor_state(net, 5, np.random.default_rng(0))
    normals = np.random.default_rng(1).standard_normal((200, 5, 11))
    together = net.simulate(x0, 200, 0.01, normals=normals)
    for i in range(5):
        alone = net.simulate(x0[i : i + 1], 200, 0.01, normals=normals[:, i : i + 1])
        np.testing.assert_allclose(together[:, i], alone[:, 0], rtol=0, atol=1e-12)


def test_simulate_refuses_bad_shapes() -> None:
    net = load_network()
    with pytest.raises(ValueError, match="rng"):
        net.simulate(np.zeros((2, 11)), 5, 0.001)
    with pytest.raises(ValueError, match="normals must have shape"):
        net.simulate(np.zeros((2, 11)), 5, 0.001, normals=np.zeros((5, 3, 11)))


# -- clamps, fates, seeds ------------------------------------------------------------------------------
def test_clamps_hold_inside_the_window_and_release_after() -> None:
    opts = _options(start="committed")
    ad = run_experiment(opts, {"Gata2": "oe", "Pu.1": "ko"}, seed=3)
    times = ad.uns["times"] / 0.02  # steps
    course = ad.obsm["time_course"]
    inside = times < 150
    g2, pu = GENES.index("Gata2"), GENES.index("Pu.1")
    assert np.all(course[:, inside, g2] == np.float32(1.0))
    assert np.all(course[:, inside, pu] == 0.0)
    assert not np.all(course[:, ~inside, g2] == np.float32(1.0))  # free after the window
    other = GENES.index("cJun")
    assert not np.all(course[:, inside, other] == course[:, :1, other])  # unclamped genes move


def test_fates_are_read_off_the_markers() -> None:
    net = load_network()
    states = np.zeros((6, 11))
    on = lambda row, *genes: [states.__setitem__((row, GENES.index(g)), 1.0) for g in genes]  # noqa: E731
    on(0, "Gata1", "EKLF")
    on(1, "Gata1", "Fli1")
    on(2, "Pu.1", "cJun", "EgrNab")
    on(3, "Pu.1", "Cebpa", "Gfi1")
    on(4, "Gata1", "EKLF", "Fli1")  # both erythroid and megakaryocyte markers disagree: undecided
    fates = [FATES[i] for i in fates_of(net, states, 0.5)]
    assert fates == ["erythrocyte", "megakaryocyte", "monocyte", "neutrophil", "undecided", "undecided"]


def test_experiment_is_anndata_scanpy_reads(tmp_path: Path) -> None:
    import scanpy as sc

    ad = run_experiment(_options(), {"Fli1": "ko"}, seed=1)
    assert ad.shape == (40, 11) and list(ad.var_names) == list(GENES)
    assert ad.obsm["time_course"].shape == (40, 11, 11)  # cells x times (0, 30, ..., 299) x genes
    assert set(ad.obs["fate"].cat.categories) == set(FATES)
    assert abs(sum(ad.uns["fractions"].values()) - 1.0) < 1e-9
    ad.write_h5ad(tmp_path / "x.h5ad")
    back = sc.read_h5ad(tmp_path / "x.h5ad")
    assert back.obs["fate"].tolist() == ad.obs["fate"].tolist()
    assert back.uns["cocktail"] == {"Fli1": "ko"}


def test_seeds_give_different_samples_and_the_same_seed_the_same() -> None:
    opts = _options()
    a, b, c = (run_experiment(opts, {"Gata2": "oe"}, seed=s).X for s in (1, 2, 1))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, c)


def test_a_known_cocktail_reprograms_committed_cells() -> None:
    """Gata2 overexpressed with Fli1 knocked out turns committed (mostly monocyte) cells erythroid; the
    untreated culture stays mostly monocyte."""
    opts = CellOptions(cells=100)
    treated = run_experiment(opts, {"Gata2": "oe", "Fli1": "ko"}, seed=0).uns["fractions"]
    untreated = run_experiment(opts, {}, seed=0).uns["fractions"]
    assert treated["erythrocyte"] >= 0.9
    assert untreated["monocyte"] > 0.5 and untreated["erythrocyte"] < 0.3


def test_unknown_gene_or_level_is_refused() -> None:
    with pytest.raises(KeyError, match="not a gene"):
        run_experiment(_options(), {"Myc": "oe"}, seed=0)
    with pytest.raises(ValueError, match="level must be one of"):
        run_experiment(_options(), {"Gata1": "up"}, seed=0)


# -- the spec, the world, edits -------------------------------------------------------------------------
def test_shipped_spec_is_valid_and_reads_its_readouts() -> None:
    world, spec = get_world("cell"), load_spec(SPEC)
    assert world.check_spec(spec) == []
    names = {r.name for r in world.readouts(spec)}
    assert {"target_fraction", *(f"fraction_{f}" for f in FATES)} <= names
    assert [s.name for s in world.series(spec)] == list(GENES)
    assert len(all_cocktails(spec.interventions[0])) == 1563


def test_bad_specs_name_their_problem() -> None:
    world, spec = get_world("cell"), load_spec(SPEC)
    data = spec.model_dump(mode="json")
    data["interventions"][0]["items"] = [*data["interventions"][0]["items"][:-1], "Myc"]
    assert any("Myc" in p and "not genes of the network" in p for p in world.check_spec(CampaignSpec.model_validate(data)))
    data = spec.model_dump(mode="json")
    data["interventions"][0]["levels"] = ["ko", "half"]
    assert any("half" in p for p in world.check_spec(CampaignSpec.model_validate(data)))
    assert any("window" in p for p in world.check_spec(_spec(window=[100, 50])))
    assert any("target" in p for p in world.check_spec(_spec(target="neuron")))
    with pytest.raises(SpecError, match="cannot run in world 'cell'"):
        world.make_lab(_spec(cells=1))


def test_a_reviewer_adds_and_removes_a_clamp() -> None:
    spec = load_spec(SPEC)
    base = {"cocktail": {"Gata2": "oe"}}
    added = parse_edit_text(spec, base, "cocktail=Gata2:oe+Fli1:ko")
    assert added.values["cocktail"] == {"Fli1": "ko", "Gata2": "oe"} and added.violations(spec) == []
    removed = parse_edit_text(spec, {"cocktail": {"Gata2": "oe", "Fli1": "ko"}}, "cocktail=Fli1:ko")
    assert removed.values["cocktail"] == {"Fli1": "ko"} and removed.violations(spec) == []
    four = parse_edit_text(spec, base, "cocktail=Gata2:oe+Fli1:ko+EKLF:oe+Pu.1:ko")
    assert any("between 0 and 3" in v for v in four.violations(spec))
    assert any("not among its items" in v for v in parse_edit_text(spec, base, "cocktail=Myc:oe").violations(spec))
    with pytest.raises(ReviewError):
        parse_edit_text(spec, base, "cocktail=Gata2=oe")


def _gene_words(path: Path) -> set[str]:
    words = [g.lower() for g in GENES] + ["krumsiek"]
    return {w for t in import_direction.code_texts(path) for w in words if w in t.lower()}


def test_generic_code_names_no_gene_of_the_network() -> None:
    """Outside the world folder (and the registry), no code names a gene of this network."""
    found = {str(p): w for p in import_direction._generic_files() for w in _gene_words(p)}
    assert found == {}
    probe = import_direction.PACKAGE / "planners" / "_x_cell_probe.py"
    probe.write_text('"""docs may say Gata1"""\nGENE = "Pu.1"\n')
    try:
        assert _gene_words(probe) == {"pu.1"}
    finally:
        probe.unlink()


# -- the parts model and the proposer -------------------------------------------------------------------
def test_parts_model_recovers_additive_and_pairwise_effects() -> None:
    items, levels = ("a", "b", "c", "d"), ("ko", "oe")
    space = [c for c in all_cocktails(load_spec(SPEC).interventions[0].model_copy(update={"items": items, "max_items": 2}))]

    def truth(c: dict[str, str]) -> float:
        y = 0.2 + 0.1 * (c.get("a") == "oe") + 0.05 * (c.get("b") == "ko")
        return y + 0.4 * (c.get("a") == "oe" and c.get("c") == "ko")

    y = [truth(c) for c in space]
    pairs = PartsModel(items, levels, pairs=True, prior_sd=10.0, min_noise=1e-3).fit(space, y)
    additive = PartsModel(items, levels, pairs=False, prior_sd=10.0, min_noise=1e-3).fit(space, y)
    err_pairs = np.abs(pairs.samples(space)[0] - y).max()
    err_add = np.abs(additive.samples(space)[0] - y).max()
    assert err_pairs < 0.01 < err_add
    untreated = PartsModel(items, levels, pairs=True).fit([{}], [0.9])
    assert abs(untreated.samples([{}])[0, 0] - 0.9) < 1e-3  # the untreated cells seen: their level
    some = PartsModel(items, levels, pairs=True).fit([{}, {"a": "oe"}, {"b": "ko"}], [0.2, 0.3, 0.25])
    spread = some.samples([{"a": "oe"}, {"c": "oe"}, {"c": "oe", "d": "ko"}]).std(0)
    assert spread[0] < spread[1] < spread[2]  # a part seen is surer than one never seen, two unseen less sure still


def test_proposer_offers_every_untried_cocktail_whatever_the_menu_size() -> None:
    from wetloop.campaign import Intervention, Observation

    spec = load_spec(SPEC)
    first = CocktailProposer().propose(ProposalContext(spec=spec, round=1, history=(), n_candidates=48))
    values = [c.values["cocktail"] for h in first.hypotheses for c in h.candidates]
    assert len(values) == 1563 and {} in values
    ran = [
        (
            Intervention(values={"cocktail": {"Gata2": "oe"}}),
            Observation(experiment_key="k", status="ok", readouts={"target_fraction": 0.3}),
        )
    ]
    later = CocktailProposer().propose(ProposalContext(spec=spec, round=2, history=ran, n_candidates=48))
    values = [c.values["cocktail"] for h in later.hypotheses for c in h.candidates]
    assert len(values) == 1562 and {"Gata2": "oe"} not in values


# -- lab, oracle, bench ------------------------------------------------------------------------------------
def _tiny_spec() -> CampaignSpec:
    spec = _spec(cells=40)
    data = spec.model_dump(mode="json")
    data["interventions"][0].update(items=["Gata2", "Fli1", "EKLF", "Pu.1"], max_items=2)
    data["budget"] = {"rounds": 2, "batch": 2}
    return CampaignSpec.model_validate(data)


def test_lab_reports_fractions_and_keeps_the_anndata(tmp_path: Path) -> None:
    import scanpy as sc

    from wetloop.campaign import Experiment, Intervention
    from wetloop.lab_adapters import wait_for

    spec = _tiny_spec()
    x = Intervention(values={"cocktail": {"Gata2": "oe", "Fli1": "ko"}})
    exps = [Experiment(campaign_id="c", round=1, intervention=x, approved_by="t", context={"repeat": r}) for r in (0, 1)]
    with get_world("cell").make_lab(spec, cache_dir=tmp_path) as lab:
        first, second = wait_for(lab, [lab.submit(e) for e in exps])
    assert first.status == "ok" and first.readouts["target_fraction"] >= 0.9
    assert set(first.trajectory.series) == set(GENES) and first.trajectory.times_min[-1] == pytest.approx(499 * 0.02)
    back = sc.read_h5ad(first.raw["anndata"])
    assert Path(first.raw["anndata"]).name == f"{exps[0].key}.h5ad"
    assert (back.obs["fate"] == "erythrocyte").mean() == first.readouts["fraction_erythrocyte"]
    assert first.raw["anndata"] != second.raw["anndata"]
    assert not np.array_equal(back.X, sc.read_h5ad(second.raw["anndata"]).X)  # a repeat is another sample


def test_oracle_simulates_every_cocktail() -> None:
    spec = _tiny_spec()
    orc = oracle(spec, CellOptions.model_validate(spec.world_options))
    assert orc.n == len(orc.cocktails) == 1 + 8 + 24
    assert np.allclose(orc.fractions.sum(1), 1.0)
    assert {"Fli1": "ko", "Gata2": "oe"} in orc.qualifying
    assert orc.best_value == orc.target_fractions.max() >= 0.9
    assert random_expectation(10, 0, 3) == 0.0 and random_expectation(10, 10, 1) == 1.0
    assert abs(random_expectation(10, 1, 3) - 0.3) < 1e-12


@pytest.mark.slow
def test_bench_runs_tiny(tmp_path: Path) -> None:
    spec = _tiny_spec()
    world = get_world("cell")

    def create(s: CampaignSpec, run_dir: Path, learn: bool = True, shuffle_feedback: bool = False) -> Campaign:
        settings = AgentSettings(learn=learn, shuffle_feedback=shuffle_feedback)
        return Campaign.create(s, run_dir, settings=settings, console=Console(quiet=True))

    fig = bench_cell(spec, 1, ["erythrocyte"], tmp_path, create, world.make_lab, log=lambda _: None)
    t = fig["targets"]["erythrocyte"]
    assert t["oracle"]["cocktails"] == 33 and t["oracle"]["qualifying"] >= 1
    assert not list(tmp_path.glob("erythrocyte-ours_no_learning-0/**/models/*"))  # the no-learning control never fits
    assert list(tmp_path.glob("erythrocyte-ours-0/**/models/*"))
    for method in ("ours", "ours_no_learning", "ours_shuffled", "ours_gp", "random"):
        (run,) = t["methods"][method]
        assert run["experiments"] == 4 and run["cost"] >= 4  # 1 per experiment plus 1 per clamp
        assert run["found"] == (run["first"] is not None)
        assert run["cost_until_done"] == (run["cost_to_first"] if run["found"] else run["cost"])


def test_report_shows_fate_fractions_per_cocktail() -> None:
    from types import SimpleNamespace

    from wetloop.campaign import Experiment, Intervention, Observation

    spec = load_spec(SPEC)
    x = Intervention(values={"cocktail": {"Gata2": "oe", "Fli1": "ko"}})
    readouts = {
        "target_fraction": 0.95,
        **{f"fraction_{f}": 0.0 for f in FATES},
        "fraction_erythrocyte": 0.95,
        "fraction_undecided": 0.05,
    }
    outcome = SimpleNamespace(
        experiment=Experiment(campaign_id="c", round=2, intervention=x, approved_by="t"),
        observation=Observation(experiment_key="k", status="ok", readouts=readouts),
    )
    (fig,) = get_world("cell").report_figures(SimpleNamespace(spec=spec, outcomes=(outcome,)))
    bars = {t.name: t.y[0] for t in fig.data}
    assert bars["erythrocyte"] == 0.95 and bars["undecided"] == 0.05 and set(bars) == set(FATES)
    assert "Fli1 ko + Gata2 oe" in fig.data[0].x[0]
    assert get_world("cell").report_figures(SimpleNamespace(spec=spec, outcomes=())) == []


def test_the_world_and_its_command_import_light() -> None:
    """The registry and the CLI import every world: this one loads neither scanpy nor torch until it runs."""
    import subprocess
    import sys

    probe = (
        "import sys, typer\nfrom wetloop.campaign import get_world\n"
        "get_world('cell').register_cli(typer.Typer(), None)\n"
        "print(sorted(m for m in ('torch', 'scanpy', 'anndata') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_model_comparison_scores_every_model() -> None:
    from wetloop.worlds.cell._flow import FlowConfig
    from wetloop.worlds.cell._model_eval import MODELS, compare_models

    fig = compare_models(_tiny_spec(), [8], test=6, repeats=1, flow=FlowConfig(members=2, hidden=32, steps=100))
    row = fig["sizes"][8]
    assert set(row["models"]) == set(MODELS) and row["replicate"]["target_mae"] >= 0
    for m in MODELS:
        assert 0 <= row["models"][m]["target_mae"] <= 1 and 0 <= row["models"][m]["target_coverage90"] <= 1
