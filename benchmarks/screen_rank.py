"""Time one full screen ranking: every untested gene of IFNG (~17,400 once core-essential genes are left
out) scored and a batch of 128 picked.

    WETLOOP_DATA_DIR=../shared/data python benchmarks/screen_rank.py [--threads 2]

Fits the screen model on 256 tested genes first (not timed), then times `ScreenPlanner.rank`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wetloop.campaign import Intervention, Observation
from wetloop.worlds.crispr_screen import ScreenPlanner, ScreenWorldModel, screen_of
from wetloop.worlds.crispr_screen._bench import screen_spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = screen_spec("IFNG", None, 5, 128, 0)
    screen, world = screen_of(spec), ScreenWorldModel(spec)
    genes = np.random.default_rng(0).choice(screen.genes, 256, replace=False)
    history = [
        (
            Intervention(values={"gene": str(g)}),
            Observation(experiment_key=str(g), status="ok", readouts={"hit": float(g in screen.hits), "score": 0.0}),
        )
        for g in genes
    ]
    world.fit(history)
    planner, times = ScreenPlanner(spec), []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ranking = planner.rank([], world, history, 3)
        times.append(time.perf_counter() - t0)
    untested = world.selectable & ~np.isin(np.array(world.genes), genes)
    print(
        f"ranked {int(untested.sum())} untested selectable genes, batch {len(ranking.selected)}, "
        f"{args.threads} threads: median {np.median(times):.3f} s, max {max(times):.3f} s (target < 0.3 s)"
    )


if __name__ == "__main__":
    main()
