"""World-model calibration on real simglucose days: held-out CRPS and interval coverage.

Simulates 28 days of the default patient (24 regimens stratified over log basal 0.15-2 U/h x log
carb ratio 5-50, plus 4 fixed ones) through the simglucose lab (cached under --cache-dir, so a
second run costs seconds), then for n training days in (4, 8, 20) fits the world model on n days and
scores it on 8 other days, over 3 random splits:

    one-step (15-min) CRPS vs persistence, one-step 90% coverage,
    open-loop (whole-day) CRPS and 90% coverage, and the error of predicted time in range.

Run: `python benchmarks/worldmodel_calibration.py [--cache-dir DIR]` from the repository root.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from wetloop.campaign import Experiment, Intervention, default_spec_path, load_spec
from wetloop.lab_adapters import wait_for
from wetloop.worlds.simglucose import SimglucoseLab, TrajectoryWorldModel, calibration_report, glucose_readouts


def regimens(n: int = 24, seed: int = 7) -> list[Intervention]:
    rng = np.random.default_rng(seed)
    u = (np.stack([rng.permutation(n), rng.permutation(n)], 1) + rng.random((n, 2))) / n  # Latin hypercube
    basal = np.exp(np.log(0.15) + u[:, 0] * np.log(2.0 / 0.15))
    ratio = np.exp(np.log(5.0) + u[:, 1] * np.log(50.0 / 5.0))
    fixed = [(0.6, 20.0), (0.2, 40.0), (0.6, 6.0), (0.45, 25.0)]
    return [Intervention(values={"basal": float(b), "carb_ratio": float(c)}) for b, c in [*zip(basal, ratio), *fixed]]


def simulate(spec, xs: list[Intervention], cache_dir: Path) -> list:
    with SimglucoseLab(spec, cache_dir=cache_dir) as lab:
        exps = [Experiment(campaign_id="calibration", round=1, intervention=x, approved_by="benchmark") for x in xs]
        observations = wait_for(lab, [lab.submit(e) for e in exps])
    return list(zip(xs, observations))


def score(spec, pairs: list, n_train: int, n_test: int = 8, splits: int = 3) -> dict[str, float]:
    rows = []
    for split in range(splits):
        order = np.random.default_rng(split).permutation(len(pairs))
        train, test = [pairs[i] for i in order[:n_train]], [pairs[i] for i in order[n_train : n_train + n_test]]
        model = TrajectoryWorldModel(spec)
        model.fit(train)
        cal = calibration_report(model, test)
        tir_err = [
            abs(
                float(model.outcome(model.sample([x])[0])["time_in_range"].mean())
                - glucose_readouts(np.array(o.trajectory.series["glucose"]), spec)["time_in_range"]
            )
            for x, o in test
        ]
        rows.append(
            [
                cal.one_step_crps,
                cal.persistence_mae,
                cal.one_step_coverage,
                cal.open_loop_crps,
                cal.open_loop_coverage,
                float(np.mean(tir_err)),
            ]
        )
    m = np.mean(rows, axis=0)
    keys = ("one_step_crps", "persistence_mae", "one_step_coverage", "open_loop_crps", "open_loop_coverage", "tir_abs_error")
    return dict(zip(keys, m.round(3).tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/benchmark-cache"))
    args = parser.parse_args()
    spec = load_spec(default_spec_path())
    t0 = time.perf_counter()
    pairs = simulate(spec, regimens(), args.cache_dir)
    print(f"{len(pairs)} real days ready in {time.perf_counter() - t0:.0f} s")
    print(
        "| training days | one-step CRPS (persistence) | one-step 90% coverage | open-loop CRPS | open-loop 90% coverage | TIR abs error |"
    )
    print("|---|---|---|---|---|---|")
    for n in (4, 8, 20):
        r = score(spec, pairs, n)
        print(
            f"| {n} | {r['one_step_crps']:.2f} ({r['persistence_mae']:.2f}) | {r['one_step_coverage']:.2f} | "
            f"{r['open_loop_crps']:.1f} | {r['open_loop_coverage']:.2f} | {r['tir_abs_error']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
