"""Prior data from other virtual patients: a campaign whose world model starts from other patients'
exported days (`wetloop run --prior`) against the same campaign from scratch.

1. Donor campaigns: one per donor patient (offline proposer, autonomous), each exported (`wetloop export`).
2. For each seed, the target patient's campaign twice with that seed: from scratch, and with the donors'
   exports as prior data (its model is fitted on them before round 1, then on them and its own days).
3. Per arm: the days (experiments, in approval order) until a safe day reaches the target time in range,
   and the calibration of the objective's predictions in the first two rounds (90% interval coverage
   and mean absolute error, read from the campaign's own export).

The days are the example spec's short days (`SimglucoseWorld.example_spec`: 4 hours, two meals) so the
run takes minutes on two cores. Run from the repository root:

    python benchmarks/prior_patient.py [--seeds 3] [--rounds 4] [--batch 3] [--target 0.8] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from wetloop.agent.configuration import AgentSettings
from wetloop.agent.export import campaign_records, export_campaign
from wetloop.agent.runner import Campaign
from wetloop.campaign import Budget, CampaignSpec, get_world
from wetloop.campaign._transitions import TransitionRecord

QUIET = Console(stderr=True, quiet=True)


def _spec(patient: str, rounds: int, batch: int, seed: int) -> CampaignSpec:
    base = get_world("simglucose").example_spec()
    return base.with_overrides(
        world_options={**base.world_options, "patient": patient},
        budget=Budget(rounds=rounds, batch=batch),
        at_ceiling={"action": "explore"},
        seed=seed,
    )


def _run(spec: CampaignSpec, run_dir: Path, prior: tuple[str, ...] = ()) -> list[TransitionRecord]:
    world = get_world("simglucose")
    settings = AgentSettings(prior=prior, lab_workers=2)
    with Campaign.create(spec, run_dir, settings=settings, console=QUIET, world_config=world.light_model_config()) as c:
        c.run()
        return campaign_records(c.store, c.campaign_id)


def _days_to_target(records: list[TransitionRecord], target: float) -> int | None:
    for i, r in enumerate(records, start=1):
        if r.status == "ok" and not r.unsafe and r.objective_value is not None and r.objective_value >= target:
            return i
    return None


def _calibration(records: list[TransitionRecord], rounds: int = 2) -> dict[str, Any]:
    pairs = [
        (r.prediction, r.objective_value)
        for r in records
        if r.round <= rounds and r.prediction is not None and r.prediction.mean is not None and r.objective_value is not None
    ]
    inside = [p.lower is not None and p.upper is not None and p.lower <= y <= p.upper for p, y in pairs]
    return {
        "predictions": len(pairs),
        "coverage_90": sum(inside) / len(inside) if inside else None,
        "mae": statistics.fmean(abs(p.mean - y) for p, y in pairs) if pairs else None,  # type: ignore[operator]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-patient", default="adolescent#003")
    parser.add_argument("--donors", nargs="+", default=["adolescent#001", "adolescent#002"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.8, help="time in range a safe day must reach")
    parser.add_argument("--dir", type=Path, default=Path("runs") / f"bench-prior-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()

    t0 = time.perf_counter()
    exports = []
    for i, donor in enumerate(args.donors):
        run_dir = args.dir / f"donor-{i}"
        _run(_spec(donor, args.rounds, args.batch, seed=100 + i), run_dir)
        with Campaign(run_dir, console=QUIET) as c:
            exports.append(str(export_campaign(c.store, c.campaign_id, run_dir / "export", ["jsonl"]).transitions["jsonl"]))
    rows = []
    for seed in range(args.seeds):
        for arm, prior in (("scratch", ()), ("prior", tuple(exports))):
            records = _run(_spec(args.target_patient, args.rounds, args.batch, seed), args.dir / f"{arm}-{seed}", prior)
            best = max((r.objective_value for r in records if r.objective_value is not None and not r.unsafe), default=None)
            row = {"seed": seed, "arm": arm, "days_to_target": _days_to_target(records, args.target), "best": best}
            rows.append({**row, "unsafe_days": sum(r.unsafe for r in records), **_calibration(records)})
            print(json.dumps(rows[-1]), flush=True)
    figures = {
        "target_patient": args.target_patient,
        "donors": args.donors,
        "donor_days": args.rounds * args.batch * len(args.donors),
        "budget": {"rounds": args.rounds, "batch": args.batch},
        "target_time_in_range": args.target,
        "rows": rows,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    (args.dir / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
