"""One simulated day of simglucose, run in whichever process gets the job: a pool worker, or the
caller of `reference_day`. Jobs are plain dicts (picklable under the spawn start method).

A job: {"spec": spec JSON, "values": canonical intervention values or None (the reference
controller), "controller": "regimen" | "reference", "root": world cache folder, "experiment_key",
"day_seed": the seed of the day drawn when the spec's days vary (absent or None for its fixed day)}.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from datetime import datetime, timedelta
from typing import Any

from wetloop.campaign import CampaignSpec, Intervention
from wetloop.lab_adapters import DayStore

from ._days import DayPlan
from ._dosing import dosing_schedule
from ._options import STEP_MIN, DayOptions, day_key, day_options, simglucose_version

__all__ = ["run_day_job", "simulate_day", "watch_parent", "UNITS"]

UNITS = {"glucose": "mg/dL", "cgm": "mg/dL", "insulin": "U", "carbs": "g"}


def watch_parent(parent_pid: int, interval_s: float = 0.2) -> None:
    """Pool initializer: end this worker when the process that started it is gone (kill -9 included).

    Without it, the workers of a killed parent would finish the day they hold and then wait on
    their task queue forever.
    """
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    # Ctrl-C reaches the whole process group: the parent handles it (and says how to resume); an idle
    # worker would only print a KeyboardInterrupt traceback. The parent's exit ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="wetloop-parent-watch").start()


def run_day_job(job: dict[str, Any]) -> dict[str, Any]:
    """Return the job's day from the cache, or simulate, store and count it; at most one process
    simulates a day at a time (the day's lock), and it re-reads the cache once it holds the lock.

    Returns {"day": {"trajectory": ..., "raw": ...}, "cache": "hit" | "miss", "day_key": ...}.
    """
    spec = CampaignSpec.model_validate_json(job["spec"])
    options = day_options(spec)
    intervention = Intervention(values=job["values"]) if job["values"] is not None else None
    day_seed = job.get("day_seed") if options.variation is not None else None
    key = day_key(options, intervention, spec.seed, job["controller"], day_seed)
    store = DayStore(job["root"])
    with store.lock(key):
        day = store.read_result(key)
        if day is not None:
            return {"day": day, "cache": "hit", "day_key": key}
        day = simulate_day(spec, options, intervention, job["controller"], options.day(day_seed))
        store.write_result(key, day)
        if job.get("experiment_key"):
            store.mark_run(job["experiment_key"], key)
    return {"day": day, "cache": "miss", "day_key": key}


def simulate_day(
    spec: CampaignSpec, options: DayOptions, intervention: Intervention | None, controller: str, day: DayPlan
) -> dict[str, Any]:
    """Run `day` of the spec's patient under the regimen (or simglucose's basal-bolus controller with
    the patient's true parameters when `intervention` is None and `controller` is "reference");
    return {"trajectory", "raw"} as JSON data, the day's meals and seed in raw."""
    from . import _controller  # imports simglucose: only where days are simulated

    env, start = _make_env(spec, options, day)
    if controller == "reference":
        ctrl: Any = _controller.ReferenceController(day, start, STEP_MIN)
        extra: dict[str, Any] = {"reference": _controller.reference_regimen(ctrl, options.patient)}
    else:
        assert intervention is not None, "the regimen controller needs an intervention"
        ctrl = _controller.RegimenController(dosing_schedule(spec, intervention, step_min=STEP_MIN, day=day), start)
        extra = {}
    if options.variation is not None:
        extra["day"] = day.as_record()
    started, tic = time.time(), time.perf_counter()
    _drive(env, ctrl, options.n_steps)
    raw = _raw(options, controller, started, time.perf_counter() - tic) | extra
    return {"trajectory": _trajectory(env, options), "raw": raw}


def _make_env(spec: CampaignSpec, options: DayOptions, day: DayPlan) -> tuple[Any, datetime]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from simglucose.actuator.pump import InsulinPump
        from simglucose.patient.t1dpatient import T1DPatient
        from simglucose.sensor.cgm import CGMSensor
        from simglucose.simulation.env import T1DSimEnv
        from simglucose.simulation.scenario import CustomScenario
    start = datetime.fromisoformat(options.start)
    meals = [(timedelta(minutes=minute), grams) for minute, grams in day.eaten()]
    patient = (
        T1DPatient.withName(options.patient, random_init_bg=True, seed=day.seed)
        if day.random_start
        else T1DPatient.withName(options.patient)
    )
    env = T1DSimEnv(
        patient,
        CGMSensor.withName(options.sensor, seed=spec.seed if day.seed is None else day.seed),
        InsulinPump.withName(options.pump),
        CustomScenario(start_time=start, scenario=meals),
    )
    return env, start


def _drive(env: Any, ctrl: Any, n_steps: int) -> None:
    """simglucose's SimObj loop, for a fixed number of env steps (each `sample_time` minutes)."""
    obs, reward, done, info = env.reset()
    for _ in range(n_steps):
        action = ctrl.policy(obs, reward, done, **info)
        obs, reward, done, info = env.step(action)


def _trajectory(env: Any, options: DayOptions) -> dict[str, Any]:
    """Series on times 0, 3, ..., hours*60. The env records insulin and carbs as mean rates per step
    (U/min, g/min); times the step they become amounts delivered during [t_i, t_i + 3 min).
    """
    step = env.sample_time
    n = options.n_steps
    series = {
        "glucose": [float(g) for g in env.BG_hist],
        "cgm": [float(c) for c in env.CGM_hist],
        "insulin": [float(u) * step for u in env.insulin_hist] + [0.0],
        "carbs": [float(c) * step for c in env.CHO_hist] + [0.0],
    }
    return {"times_min": [float(i * step) for i in range(n + 1)], "series": series, "units": dict(UNITS)}


def _raw(options: DayOptions, controller: str, started: float, wall_s: float) -> dict[str, Any]:
    return {
        "patient": options.patient,
        "sensor": options.sensor,
        "pump": options.pump,
        "hours": options.hours,
        "controller": controller,
        "simulator": f"simglucose {simglucose_version()}",
        "wall_s": round(wall_s, 4),
        "started_at": started,
        "finished_at": started + wall_s,
        "pid": os.getpid(),
    }
