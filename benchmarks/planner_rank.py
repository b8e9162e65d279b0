"""Speed of Planner.rank: 200 candidates, a 5-member x 10-particle ensemble, q = 4 (not a test).

Run: `python benchmarks/planner_rank.py [T]` from the repository root (T time points,
default 97 = a day on the world model's 15-min grid). The fake ensemble's forward costs next to
nothing, so this times the planner itself; the real world model adds its one rollout of the menu
and one band per selected candidate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.planners.fakes import FakeEnsemble, FakeWorld, make_spec, observed, proposal  # noqa: E402
from wetloop.planners import Planner  # noqa: E402


def main(times: int = 97, repeats: int = 5) -> None:
    torch.set_num_threads(2)
    spec = make_spec(batch=4)
    points = torch.rand(200, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.8, 1.0]) + torch.tensor([0.2, 0.0])
    menu = [proposal(float(a), float(b)) for a, b in points]
    history = [observed(menu[i].intervention, 0.5) for i in range(10)]
    offsets = [float(x) for x in torch.linspace(-10, 10, 10)]
    world = FakeWorld(spec, model=FakeEnsemble(members=5, particle_offsets=offsets, times=times))
    planner = Planner(spec)
    planner.rank(menu, world, history, round=2)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        planner.rank(menu, world, history, round=2)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"rank: 200 candidates, 5 x 10 ensemble, T={times}, q=4, 2 threads: "
        f"wall median {sorted(wall)[repeats // 2] * 1e3:.0f} ms (min {min(wall) * 1e3:.0f}), "
        f"CPU median {sorted(cpu)[repeats // 2] * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 97)
