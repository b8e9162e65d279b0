"""`world_model: auto`: the scalar kind is chosen by the campaign's own held-out evidence."""

from __future__ import annotations

import numpy as np
import pytest

from wetloop.campaign import Intervention, Observation, get_world, load_spec
from wetloop.worldmodel import ChosenScalarModel, ScalarWorldModel, held_out_crps
from wetloop.worlds.custom.examples import combination_response

SPEC = load_spec("wetloop/worlds/custom/specs/combination.yaml")


def history(n: int, seed: int = 0) -> list[tuple[Intervention, Observation]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        values = {
            "dose_a": float(np.exp(rng.uniform(np.log(0.1), np.log(30)))),
            "dose_b": float(np.exp(rng.uniform(np.log(0.1), np.log(30)))),
            "schedule": str(rng.choice(["together", "sequential"])),
        }
        out.append(
            (
                Intervention(values=values),
                Observation(experiment_key=f"k{i}", status="ok", readouts=combination_response(values, seed=i)),
            )
        )
    return out


def test_too_few_results_give_the_gp_and_say_why() -> None:
    model = ChosenScalarModel(SPEC, get_world("custom").readouts(SPEC))
    report = model.fit(history(4))
    assert report.kind == "gp" and "no held-out evidence yet" in report.summary() and model.evidence == {}


@pytest.mark.slow
def test_the_kind_with_the_lower_held_out_crps_is_refitted_on_everything(tmp_path) -> None:
    data, readouts = history(12), get_world("custom").readouts(SPEC)
    model = ChosenScalarModel(SPEC, readouts)
    report = model.fit(data)
    assert set(model.evidence) == {"ensemble", "gp"} and report.kind == min(model.evidence, key=model.evidence.get)
    assert model.evidence["gp"] == pytest.approx(held_out_crps(SPEC, readouts, data, "gp", 3))  # a pure function of the data
    assert report.n_experiments == 12 and "held-out CRPS of kill_fraction" in report.summary()
    path = model.save(tmp_path / "m.pt")
    again = ScalarWorldModel.load(path, SPEC, readouts)
    x = [i for i, _ in data[:3]]
    assert again.kind == report.kind and again.version == model.version
    assert np.allclose(again.sample(x).numpy(), model.sample(x).numpy())
