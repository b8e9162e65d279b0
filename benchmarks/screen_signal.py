"""How much can a screen campaign learn from its results? An upper bound per screen.

    WETLOOP_DATA_DIR=../shared/data python benchmarks/screen_signal.py [--screen IFNG --screen ...]

For each screen, every gene's neighbourhood features (`ScreenFeatures.dynamic`: STRING neighbours'
hits, best / mean hit enrichment of its gene sets) are computed as if every *other* gene had been
tested (each gene's own result left out), and scored against the hits over non-essential genes:
AUROC and the hit rate among the 640 top-ranked genes (a whole 5 x 128 campaign). That is more than
any campaign ever sees, so it bounds what learning from neighbours can add; the knowledge prior and
the task-text match of the gene's sets (no results needed) are scored the same way for comparison.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import rankdata

from wetloop.worlds.crispr_screen import DYNAMIC_NAMES, ScreenWorldModel, load_essentials, screen_of
from wetloop.worlds.crispr_screen._bench import screen_spec


def auroc(y: np.ndarray, x: np.ndarray) -> float:
    """Area under the ROC curve of score x for labels y (0/1): the Mann-Whitney U over n1 * n0, ties halved."""
    ranks, pos = rankdata(x), y > 0
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--screen", action="append", default=None)
    parser.add_argument("--top", type=int, default=640)
    args = parser.parse_args()
    essential = load_essentials()
    for name in args.screen or ["IFNG", "Carnevale22_Adenosine"]:
        spec = screen_spec(name, None, 5, 128, 0)
        model, screen = ScreenWorldModel(spec), screen_of(spec)
        f = model.features
        hit = np.array([g in screen.hits for g in model.genes], dtype=float)
        keep = np.array([g not in essential for g in model.genes])
        index = screen.index()
        score = np.array([screen.scores[index[g]] for g in model.genes])
        everything = np.ones(len(hit), bool)
        columns = {
            "prior (no results)": model.prior_probability(),
            "degree (no results)": f.static[:, 0],
            "task-text match (no results)": f.prior,
        }
        columns |= dict(zip(DYNAMIC_NAMES, f.dynamic(everything, hit, score).T))
        print(
            f"\n{name}: {int(hit[keep].sum())} non-essential hits among {int(keep.sum())} genes "
            f"(base rate {hit[keep].mean():.3f}); every other gene's result known"
        )
        print(f"  {'feature':28s} {'AUROC':>6s} {'hit rate, top ' + str(args.top):>18s}")
        for col, x in columns.items():
            x = x[keep]
            top = np.argsort(-x, kind="stable")[: args.top]
            print(f"  {col:28s} {auroc(hit[keep], x):6.3f} {hit[keep][top].mean():18.3f}")


if __name__ == "__main__":
    main()
