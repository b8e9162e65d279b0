"""World `sbml`: options, the model's time unit, input schedules, noise, the cached lab, the shipped specs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("roadrunner")
if importlib.util.find_spec("basico") is None:  # not importorskip: importing COPASI would set the C locale here
    pytest.skip("basico (copasi-basico) is not installed", allow_module_level=True)

from wetloop.campaign import (
    CampaignSpec,
    Experiment,
    Intervention,
    SpecError,
    get_world,
    load_spec,
    result_problem,
)
from wetloop.lab_adapters import wait_for
from wetloop.worlds.sbml import SPECS_DIR, SbmlLab, SbmlOptions, SbmlWorld, dense_optimum, model_info
from wetloop.worlds.sbml._simulate import simulate

NFKB = "basico:NF-kappaB.cps"


def nfkb_spec(**options) -> CampaignSpec:
    """A small NF-kB campaign: one IKK pulse of `ikk` uM for `width` minutes, observed for 2 h."""
    world_options = {
        "model": NFKB,
        "observe": {"NF_kBn": "nfkb_n", "IkBa_t": "ikba_mrna"},
        "times": {"end": 120, "step": 10},
        "inputs": [{"target": "IKK", "how": "pulses", "level": "ikk", "width": "width", "period": 240, "baseline": 0.0}],
        **options,
    }
    return CampaignSpec.model_validate(
        {
            "name": "nfkb-test",
            "question": "q",
            "world": "sbml",
            "world_options": world_options,
            "objective": {"readout": "auc_n"},
            "interventions": [{"name": "ikk", "lower": 0.0, "upper": 0.2}, {"name": "width", "lower": 5, "upper": 120}],
            "readouts": [{"name": "auc_n", "series": "nfkb_n", "stat": "auc"}],
            "safety": [{"name": "tx", "series": "ikba_mrna", "above": 0.1, "max_probability": 0.1}],
            "budget": {"rounds": 2, "batch": 2},
        }
    )


def run(spec: CampaignSpec, **values: float) -> dict[str, list[float]]:
    options = SbmlOptions.model_validate(spec.world_options)
    return simulate(model_info(options.model), options, values)


def experiment(spec: CampaignSpec, context: dict | None = None, **values: float) -> Experiment:
    return Experiment(
        campaign_id="c1", round=0, intervention=Intervention(values=values), context=context or {}, approved_by="test"
    )


# -- options --------------------------------------------------------------------------------------
def test_converting_a_copasi_file_keeps_the_locale(tmp_path):
    import locale

    before = locale.setlocale(locale.LC_ALL)
    model_info("basico:brusselator.cps", cache_dir=tmp_path)
    assert locale.setlocale(locale.LC_ALL) == before


def test_registry_returns_the_sbml_world():
    assert isinstance(get_world("sbml"), SbmlWorld)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"colour": "red"}, "colour"),  # unknown key
        ({"inputs": [{"target": "IKK", "how": "drip", "value": 1}]}, "drip"),  # unknown how
        ({"inputs": [{"target": "IKK", "how": "bolus", "value": 1}]}, "dose"),  # bolus needs a dose
        ({"times": [0, 10, 5]}, "increasing"),
        ({"observe": {"NF_kBn": "1bad"}}, "series names"),
    ],
)
def test_invalid_options_are_spec_errors_naming_the_field(change, words):
    problems = get_world("sbml").check_spec(nfkb_spec(**change))
    assert problems and words in "\n".join(problems)


def test_unknown_ids_list_close_matches():
    problems = "\n".join(get_world("sbml").check_spec(nfkb_spec(observe={"NFkBn": "nfkb_n", "IkBa_t": "ikba_mrna"})))
    assert "'NFkBn'" in problems and "NF_kBn" in problems


def test_sbml_names_resolve_like_ids():
    assert model_info(NFKB).resolve("NF-kBn", "observe").id == "NF_kBn"


def test_variables_must_be_declared_and_used():
    spec = nfkb_spec(inputs=[{"target": "IKK", "how": "initial", "value": "dose"}])
    problems = "\n".join(get_world("sbml").check_spec(spec))
    assert "'dose', which the spec does not declare" in problems and "'width' drives no input" in problems


def test_a_missing_model_says_what_to_give():
    with pytest.raises(SpecError, match="close"):
        model_info("basico:NF-kappa.cps")
    assert "no file" in "\n".join(get_world("sbml").check_spec(nfkb_spec(model="/nowhere/model.xml")))


# -- the model's time unit ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ref, seconds",
    [
        (NFKB, 1.0),
        ("basico:CircadianClock.cps", 3600.0),
        ("basico:YeastGlycolysis.cps", 60.0),
        ("basico:Genetic-2000Elo.xml", 1.0),
    ],
)
def test_time_unit_is_read_from_the_file(ref, seconds):
    assert model_info(ref).seconds_per_time_unit == seconds


def test_a_wrong_time_unit_changes_the_run():
    """The NF-kB model is in seconds: read as hours, 2 h of the campaign would be 7200 model hours."""
    spec = nfkb_spec()
    in_hours = nfkb_spec(time_unit_override="h")
    assert run(spec, ikk=0.05, width=30)["nfkb_n"] != pytest.approx(run(in_hours, ikk=0.05, width=30)["nfkb_n"], rel=0.1)


# -- schedules change the trajectory the expected way ---------------------------------------------
def test_more_ikk_gives_more_nuclear_nfkb():
    aucs = [np.trapezoid(run(nfkb_spec(), ikk=ikk, width=60)["nfkb_n"]) for ikk in (0.0, 0.01, 0.1)]
    assert aucs[0] < aucs[1] < aucs[2]


def test_a_bolus_raises_a_species_right_after_its_time():
    spec = nfkb_spec(
        observe={"IkBa": "ikba"},
        inputs=[{"target": "IkBa", "how": "bolus", "dose": "ikk", "start": 30}],
        times=[0, 10, 20, 30, 31, 40],
    )
    spec = spec.model_copy(update={"interventions": spec.interventions[:1]})
    base, dosed = run(spec, ikk=0.0)["ikba"], run(spec, ikk=0.1)["ikba"]
    assert dosed[:4] == pytest.approx(base[:4])  # sampled just before the dose at 30 min
    assert dosed[4] - base[4] > 0.05  # one minute after it


def test_constant_holds_and_releases_a_clamped_species():
    spec = nfkb_spec(
        observe={"IKK": "ikk_free"},
        inputs=[{"target": "IKK", "how": "constant", "value": "ikk", "start": 20, "end": "width", "baseline": 0.0}],
    )
    ikk = run(spec, ikk=0.05, width=60)["ikk_free"]  # times 0, 10, ..., 120
    assert ikk[:3] == [0.0, 0.0, 0.0] and ikk[3:7] == pytest.approx([0.05] * 4) and ikk[7:] == [0.0] * 6


def test_input_channels_average_pulses_over_intervals():
    spec = nfkb_spec()
    x = Intervention(values={"ikk": 0.1, "width": 15.0})
    channels = get_world("sbml").inputs(spec, [x], [0.0, 10.0, 20.0, 30.0])
    assert channels.shape == (1, 3, 1)
    assert channels[0, :, 0] == pytest.approx([0.1, 0.05, 0.0])


# -- noise ----------------------------------------------------------------------------------------
def observed(spec: CampaignSpec, tmp_path, exp: Experiment):
    with get_world("sbml").make_lab(spec, cache_dir=tmp_path) as lab:
        return wait_for(lab, [lab.submit(exp)], timeout_s=30)[0]


def test_noise_is_reproducible_per_key_and_new_for_a_repeat(tmp_path):
    spec = nfkb_spec(noise={"relative": 0.1})
    a = experiment(spec, ikk=0.05, width=30)
    repeat = experiment(spec, context={"replicate": 2}, ikk=0.05, width=30)
    first, again, other = observed(spec, tmp_path / "1", a), observed(spec, tmp_path / "2", a), observed(spec, tmp_path, repeat)
    assert first.trajectory.series == again.trajectory.series
    assert first.trajectory.series != other.trajectory.series
    assert np.corrcoef(first.trajectory.series["nfkb_n"], other.trajectory.series["nfkb_n"])[0, 1] > 0.9


# -- the lab --------------------------------------------------------------------------------------
def test_lab_is_idempotent_and_a_resume_reads_the_disk_cache(tmp_path):
    spec = nfkb_spec()
    exp = experiment(spec, ikk=0.05, width=30)
    with SbmlLab(spec, cache_dir=tmp_path) as lab:
        ticket = lab.submit(exp)
        assert lab.submit(exp) == ticket
        obs = wait_for(lab, [ticket])[0]
    with SbmlLab(spec, cache_dir=tmp_path) as resumed:
        old = resumed.poll(ticket)  # an old ticket, answered from disk
        assert (old.trajectory, old.readouts, old.raw["cache"]) == (obs.trajectory, obs.readouts, "hit")
        assert wait_for(resumed, [resumed.submit(exp)])[0].raw["cache"] == "hit"
        assert resumed.completed_runs() == {exp.key: 1}  # simulated once, ever
    assert obs.status == "ok" and obs.raw["cache"] == "miss" and obs.raw["simulator"] == "libroadrunner"
    assert result_problem(exp.key, obs, spec) is None
    assert obs.trajectory.units["nfkb_n"] == "µmol/ml" and "below_0_1_ikba_mrna" not in obs.readouts
    assert obs.readouts["above_0_1_ikba_mrna"] in (0.0, 1.0)


def test_a_roadrunner_failure_is_a_failed_observation(tmp_path):
    spec = nfkb_spec(inputs=[{"target": "IKK", "how": "pulses", "level": "ikk", "width": "width", "period": 0.0}])
    obs = observed(spec, tmp_path, experiment(spec, ikk=0.05, width=30))
    assert obs.status == "failed" and "period must be > 0" in obs.message


# -- the shipped specs ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["nfkb_pulses.yaml", "mapk_switch.yaml"])
def test_shipped_specs_check_and_run(name, tmp_path):
    spec = load_spec(SPECS_DIR / name)
    world = get_world("sbml")
    assert world.check_spec(spec) == []
    assert {s.name for s in world.series(spec)} == set(spec.world_options["observe"].values())
    mid = {v.name: v.from_unit(0.5) for v in spec.interventions}
    exp = experiment(spec, **mid)
    obs = observed(spec, tmp_path, exp)
    assert obs.status == "ok" and result_problem(exp.key, obs, spec) is None
    assert spec.objective.readout in obs.readouts


def test_dense_optimum_beats_the_start_region():
    spec = load_spec(SPECS_DIR / "nfkb_pulses.yaml")
    found = dense_optimum(spec, n=32, n_start=8)
    assert found.best_value is not None and found.start_best_value is not None
    assert found.best_value > 3 * found.start_best_value and 0.1 < found.fraction_unsafe < 0.9


def test_series_keep_their_order_through_the_store(tmp_path) -> None:
    """The store keeps a spec's mappings with sorted keys; the world's series must not depend on the
    YAML's order, or a saved series model refuses to load after a resume."""
    from wetloop.campaign import CampaignStore, get_world, load_spec
    from wetloop.worlds.sbml import SPECS_DIR

    spec = load_spec(SPECS_DIR / "nfkb_pulses.yaml")
    with CampaignStore(tmp_path / "s.sqlite") as store:
        stored = store.spec(store.create_campaign(spec))
    world = get_world("sbml")
    assert [s.name for s in world.series(stored)] == [s.name for s in world.series(spec)]
    assert list(stored.world_options["observe"]) != list(spec.world_options["observe"])  # the store did reorder
