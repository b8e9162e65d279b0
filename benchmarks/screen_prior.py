"""The screen prior's task-text weight, chosen across screens and read on each held-out screen.

    WETLOOP_DATA_DIR=../shared/data python benchmarks/screen_prior.py [--screen IFNG --screen ...] [--json]

The prior ranks genes by rank(STRING degree) + w * rank(task-text match of the gene's sets)
(`ScreenModelConfig.text_weight`). For each screen and each w on a grid, this scores the prior alone
(no results) the way a campaign is scored: the hit rate among its top 5 x batch non-essential genes
(batch as `bench screen` picks it), over the base rate (lift). Then, leaving one screen out at a time,
it picks the w with the best mean lift on the other screens and reads that w's lift on the held-out
one, against the degree alone (w = 0). Every screen in the data directory is used unless named.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from wetloop.worlds.crispr_screen import ScreenModelConfig, ScreenWorldModel, load_essentials, screen_of
from wetloop.worlds.crispr_screen._bench import auto_batch, default_screens, screen_spec

WEIGHTS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0)


def prior_lifts(name: str, weights: tuple[float, ...] = WEIGHTS, rounds: int = 5) -> dict[float, float]:
    """{w: hit rate among the prior's top rounds x batch non-essential genes / the non-essential base rate}."""
    spec = screen_spec(name, None, rounds, 128, 0)
    screen = screen_of(spec)
    essential = load_essentials()
    model = ScreenWorldModel(spec)
    keep = np.array([g not in essential for g in model.genes])
    hit = np.array([g in screen.hits for g in model.genes], dtype=float)[keep]
    top = rounds * auto_batch(len(screen.genes))
    lifts = {}
    for w in weights:
        rank = ScreenWorldModel(spec, ScreenModelConfig(text_weight=w), features=model.features).prior_rank()[keep]
        lifts[w] = float(hit[np.argsort(-rank, kind="stable")[:top]].mean() / hit.mean())
    return lifts


def leave_one_out(lifts: dict[str, dict[float, float]]) -> dict[str, dict[str, float]]:
    """Per held-out screen: the w with the best mean lift on the others, its held-out lift and the degree's."""
    out = {}
    for held in lifts:
        others = [s for s in lifts if s != held]
        weights = list(lifts[held])
        mean = [np.mean([lifts[s][w] for s in others]) for w in weights]
        best = weights[int(np.argmax(mean))]
        out[held] = {"picked": best, "others_lift": float(max(mean)), "lift": lifts[held][best], "degree_lift": lifts[held][0.0]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--screen", action="append", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.screen or default_screens(None)
    if len(names) < 2:
        parser.error(f"leave-one-screen-out needs at least two screens, found {names}; name them with --screen")
    lifts = {name: prior_lifts(name) for name in names}
    loo = leave_one_out(lifts)
    if args.json:
        print(json.dumps({"lifts": lifts, "leave_one_out": loo}, indent=1))
        return
    print("prior's lift over the base rate among its top 5 x batch non-essential genes, by text weight w")
    print(f"{'screen':24s}" + "".join(f"{w:>7g}" for w in WEIGHTS))
    for name, row in lifts.items():
        print(f"{name:24s}" + "".join(f"{v:7.2f}" for v in row.values()))
    print("\nleave one screen out: w picked on the others (their mean lift) -> held-out lift (degree alone)")
    for name, r in loo.items():
        print(f"  {name:24s} w {r['picked']:<6g} ({r['others_lift']:.2f}) -> {r['lift']:.2f} ({r['degree_lift']:.2f})")


if __name__ == "__main__":
    main()
