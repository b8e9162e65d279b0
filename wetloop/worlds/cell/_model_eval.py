"""World models of the cocktail outcome on held-out cocktails: which predicts the target fraction best?

Per repeat: `train` cocktails drawn at random (the empty cocktail, the untreated cells, always among
them), `test` other cocktails, each simulated once (one population of the options' cells, so the
truth carries one experiment's sampling noise; a second simulation of the test cocktails measures that
noise: no model can beat it on average). Models: the generic scalar ensemble and GP over the set
variable's encoding (what `world_model: ensemble | gp` fit), the parts model (single and pairwise
effects, bootstrapped ridge), the additive baseline (untreated + single effects, bootstrapped), and the
training mean. Scores: mean absolute error of the predicted mean, 90% interval coverage, CRPS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from wetloop.campaign import CampaignSpec, Intervention, Observation, get_world
from wetloop.worldmodel import crps_ensemble, interval_coverage

from ._options import FATES, CellOptions
from ._oracle import all_cocktails, cocktail_fractions
from ._parts import PartsModel

__all__ = ["MODELS", "compare_models", "print_model_comparison"]

MODELS = ("ensemble", "gp", "parts", "additive", "mean")


def _generic(kind: str, spec: CampaignSpec, train: list[dict[str, str]], y: np.ndarray, test: list[dict[str, str]]) -> np.ndarray:
    """(S, n_test) samples of the target fraction from the generic scalar model of `kind`."""
    world, var = get_world("cell"), spec.interventions[0].name
    model = world.new_model(spec.with_overrides(world_model=kind))
    history = [
        (Intervention(values={var: c}), Observation(experiment_key=f"k{i}", status="ok", readouts={"target_fraction": float(v)}))
        for i, (c, v) in enumerate(zip(train, y))
    ]
    model.fit(history)
    xs = model.encode([Intervention(values={var: c}) for c in test])
    with torch.no_grad():
        samples = model.botorch_model().posterior(xs.unsqueeze(-2)).values[..., 0, :]
        pred = model.outcome.readouts(samples.transpose(0, 1))["target_fraction"]
    return pred.double().numpy()


def _samples(name: str, spec: CampaignSpec, train: list[dict[str, str]], y: np.ndarray, test: list[dict[str, str]]) -> np.ndarray:
    var = spec.interventions[0]
    if name in ("ensemble", "gp"):
        return _generic(name, spec, train, y, test)
    if name == "mean":
        return np.full((1, len(test)), float(np.mean(y)))
    model = PartsModel(var.items or (), var.levels, pairs=name == "parts").fit(train, y)
    return model.samples(test)


def _scores(samples: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    s, t = torch.from_numpy(np.asarray(samples, dtype=float)), torch.from_numpy(truth)
    return {
        "mae": float(np.mean(np.abs(samples.mean(0) - truth))),
        "coverage90": interval_coverage(s, t, 0.9) if samples.shape[0] > 1 else float(np.mean(samples[0] == truth)),
        "crps": crps_ensemble(s, t),
    }


def compare_models(
    spec: CampaignSpec, train_sizes: list[int], test: int, repeats: int, models: tuple[str, ...] = MODELS, seed: int = 0
) -> dict[str, Any]:
    """Scores per train size and model, averaged over repeats, and the sampling-noise floor."""
    options = CellOptions.model_validate(spec.world_options)
    target = FATES.index(options.target)
    space = [c for c in all_cocktails(spec.interventions[0]) if c]
    out: dict[str, Any] = {"spec": spec.name, "target": options.target, "test": test, "repeats": repeats, "sizes": {}}
    for size in train_sizes:
        per: dict[str, list[dict[str, float]]] = {m: [] for m in models}
        noise = []
        for r in range(repeats):
            rng = np.random.default_rng([seed, size, r])
            order = rng.permutation(len(space))
            train = [{}] + [space[i] for i in order[: size - 1]]
            held = [space[i] for i in order[size - 1 : size - 1 + test]]
            y = cocktail_fractions(options, train, seed=1000 * r + size)[:, target]
            truth = cocktail_fractions(options, held, seed=1000 * r + size + 1)[:, target]
            again = cocktail_fractions(options, held, seed=1000 * r + size + 2)[:, target]
            noise.append(float(np.mean(np.abs(truth - again))))
            for m in models:
                per[m].append(_scores(_samples(m, spec, train, y, held), truth))
        out["sizes"][size] = {
            "noise_mae": float(np.mean(noise)) / np.sqrt(2),  # one simulation's error vs its expectation, roughly
            "replicate_mae": float(np.mean(noise)),
            **{m: {k: float(np.mean([s[k] for s in v])) for k in v[0]} for m, v in per.items()},
        }
    return out


def print_model_comparison(fig: dict[str, Any], console: Console) -> None:
    for size, row in fig["sizes"].items():
        table = Table(
            title=f"{fig['spec']}: {fig['target']} fraction of {fig['test']} held-out cocktails after {size} seen "
            f"({fig['repeats']} splits); two simulations of the same cocktail differ by {row['replicate_mae']:.3f} (MAE)"
        )
        for col in ("model", "MAE", "90% coverage", "CRPS"):
            table.add_column(col)
        for m in MODELS:
            if m in row:
                table.add_row(m, f"{row[m]['mae']:.3f}", f"{row[m]['coverage90']:.2f}", f"{row[m]['crps']:.3f}")
        console.print(table)
