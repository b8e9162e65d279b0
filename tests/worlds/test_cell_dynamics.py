"""The cell world's learned dynamics: fitted to cells' time courses, it predicts cocktails it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scanpy")

from wetloop.campaign import CampaignSpec, Intervention, Observation, SpecError, get_world, load_spec
from wetloop.worlds.cell import SPECS_DIR, CellOptions, oracle
from wetloop.worlds.cell._dynamics import READOUTS, CellDynamicsModel, CellModelConfig, band_gene
from wetloop.worlds.cell._experiment import lab_result, run_experiment

TRAIN = [{}, {"Gata2": "oe"}, {"Fli1": "ko"}, {"EKLF": "oe"}, {"Pu.1": "ko"}, {"Gata2": "ko"}, {"Fli1": "oe", "Pu.1": "oe"}]
CONFIG = CellModelConfig(members=3, iterations=400, cells=40)


def _spec() -> CampaignSpec:
    spec = load_spec(SPECS_DIR / "reprogram.yaml")
    data = spec.model_dump(mode="json")
    data["world_options"].update(cells=60, steps=300, window=[0, 150], record_every=30)
    data["interventions"][0].update(items=["Gata2", "Fli1", "EKLF", "Pu.1"], max_items=2)
    return CampaignSpec.model_validate(data)


def _history(spec: CampaignSpec, tmp: Path, cocktails: list[dict[str, str]]) -> list[tuple[Intervention, Observation]]:
    options = CellOptions.model_validate(spec.world_options)
    out = []
    for k, c in enumerate(cocktails):
        adata = run_experiment(options, c, seed=100 + k)
        path = tmp / f"e{k}.h5ad"
        adata.write_h5ad(path)
        readouts = lab_result(options, adata)["readouts"]
        out.append(
            (
                Intervention(values={"cocktail": c}),
                Observation(experiment_key=f"e{k}", status="ok", readouts=readouts, raw={"anndata": str(path)}),
            )
        )
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[CampaignSpec, CellDynamicsModel, list]:
    spec = _spec()
    history = _history(spec, tmp_path_factory.mktemp("cells"), TRAIN)
    model = get_world("cell").new_model(spec, CONFIG)
    assert isinstance(model, CellDynamicsModel)
    report = model.fit(history)
    assert report.n_experiments == len(TRAIN) and report.skipped == 0
    assert report.n_transitions == len(TRAIN) * 60 * 10  # 60 cells, 10 recorded intervals each
    return spec, model, history


def test_predicts_every_cocktail_of_the_space_with_a_spread(fitted) -> None:
    spec, model, _ = fitted
    table = model.table.numpy()  # (members, cocktails, readouts)
    assert table.shape == (3, 33, len(READOUTS))
    assert np.allclose(table[..., 1:].sum(-1), 1.0)  # the fate shares of each member sum to 1
    assert np.array_equal(table[..., 0], table[..., 1])  # target_fraction is the erythrocyte share
    assert table[..., 0].std(0).max() > 0  # the members disagree somewhere
    x = [Intervention(values={"cocktail": {"Gata2": "oe", "EKLF": "oe"}})]
    posterior = model.botorch_model().posterior(model.encode(x).unsqueeze(-2))
    assert posterior.values.shape == (1, 3, 1, len(READOUTS))


def test_an_unseen_cocktail_is_predicted_from_the_dynamics_and_ranks_like_the_simulator(fitted) -> None:
    """Only singles (and one pair) were run; the pairs the simulator sends to erythrocytes come out on top."""
    spec, model, _ = fitted
    truth = oracle(spec, CellOptions.model_validate(spec.world_options), cells=60)
    predicted = model.table[..., 0].mean(0).numpy()
    assert np.corrcoef(predicted, truth.target_fractions)[0, 1] > 0.6  # 0.76-0.81 over three seeds
    top = model.space[int(np.argmax(predicted))]
    assert top not in TRAIN and truth.target_fractions[truth.cocktails.index(top)] >= 0.9


def test_clamped_genes_hold_during_the_window_then_move(fitted) -> None:
    spec, model, _ = fitted
    times, means = model.trajectories([{"Gata2": "oe", "Pu.1": "ko"}])
    steps = np.rint(times / 0.02)
    window = steps < 150
    gata2, pu1 = model.net.index("Gata2"), model.net.index("Pu.1")
    assert np.all(means[:, 0, window, gata2] == 1.0) and np.all(means[:, 0, window, pu1] == 0.0)
    assert np.any(means[:, 0, ~window, gata2] != 1.0)  # released: the learned field moves it
    band = model.predict_band(Intervention(values={"cocktail": {"Gata2": "oe", "Fli1": "ko"}}))
    assert band.series == band_gene(model.options) == "EKLF"
    assert len(band.median) == len(times) and all(lo <= m <= hi for lo, m, hi in zip(band.lower, band.median, band.upper))


def test_save_and_load_keep_the_predictions(fitted, tmp_path: Path) -> None:
    spec, model, _ = fitted
    path = tmp_path / "m.pt"
    model.save(path)
    back = get_world("cell").load_model(path, spec)
    assert back.version == model.version
    assert np.array_equal(back.table.numpy(), model.table.numpy())
    assert np.array_equal(back.fractions([{"Gata2": "oe"}]), model.fractions([{"Gata2": "oe"}]))


def test_refuses_results_without_time_courses(tmp_path: Path) -> None:
    spec = _spec()
    bare = [
        (Intervention(values={"cocktail": {}}), Observation(experiment_key="k", status="ok", readouts={"target_fraction": 0.1}))
    ]
    with pytest.raises(SpecError, match="time course.*world_model: gp"):
        CellDynamicsModel(spec, CellOptions.model_validate(spec.world_options), CONFIG).fit(bare)


def test_trajectories_at_chosen_recorded_steps_and_fit_from_arrays(fitted) -> None:
    spec, model, _ = fitted
    times, full = model.trajectories([{"EKLF": "oe"}])
    part_times, part = model.trajectories([{"EKLF": "oe"}], steps=[0, 150, 299])
    assert np.allclose(part_times, [0.0, 3.0, 5.98]) and np.array_equal(part, full[:, :, [0, 5, -1]])
    with pytest.raises(ValueError, match="among the recorded steps"):
        model.trajectories([{"EKLF": "oe"}], steps=[7])
    # the same populations as arrays give the same fit as through the lab's AnnData files
    import anndata as ad

    _, _, history = fitted
    courses = [np.asarray(ad.read_h5ad(o.raw["anndata"]).obsm["time_course"]) for _, o in history]
    again = CellDynamicsModel(spec, model.options, CONFIG)
    again.fit_courses(TRAIN, courses, model.record_steps().tolist(), predict_space=True)
    assert again.version == model.version and np.array_equal(again.table.numpy(), model.table.numpy())


def test_forecast_gives_fate_shares_and_every_gene_trajectory(fitted) -> None:
    """What `bench worldmodel` reads: readout samples per member and each gene's mean trajectory."""
    spec, model, _ = fitted
    xs = [Intervention(values={"cocktail": c}) for c in ({"Gata2": "oe", "EKLF": "oe"}, {"Pu.1": "ko"})]
    out = get_world("cell").forecast(model, spec, xs)
    assert set(out.readouts) == set(READOUTS) and out.readouts["target_fraction"].shape == (3, 2)
    assert set(out.series) == set(model.net.genes) and out.series["EKLF"].shape == (3, 2, len(out.times_min))
