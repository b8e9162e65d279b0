"""A campaign on disk, and the one place where the loop's parts are built and wired.

A run directory holds everything of one campaign:

    campaign.json        the campaign id, how it runs (review mode) and its proposer (an LLM endpoint's
                         base_url and model, never its key); the store holds the same as its `run` event,
                         written with the campaign record in one commit, so a lost campaign.json is rebuilt
    store.sqlite         the append-only campaign store
    checkpoints.sqlite   LangGraph's checkpoints (one per node)
    models/              world-model versions, one file per round
    lab/                 the lab's journal and result cache (so a resumed campaign finds its runs)
    report/              report.html and summary.md
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from rich.console import Console

from wetloop.campaign import CampaignSpec, CampaignStore, Decision, EarlyStop, get_world
from wetloop.lab_adapters import Lab, make_lab
from wetloop.planners import PlannerConfig

from ._hints import command
from ._prior import check_prior
from .configuration import AgentSettings, LLMSettings
from .errors import RunDirError
from .graph import LoopContext, build_graph
from .offline import OfflineProposer

__all__ = ["Campaign", "RunOutcome", "LabFactory"]

LabFactory = Callable[[CampaignSpec, Path], Lab]
RUN_FILE = "campaign.json"


@dataclass(frozen=True)
class RunOutcome:
    """Where the graph stopped: `done`, or waiting for review (`review` holds the payload); `stopped` says
    why a done campaign ended before its budget was spent (None when it spent it), `stalled` why, when
    that was a round with no experiment to run (a failure: the CLI exits non-zero)."""

    campaign_id: str
    done: bool
    round: int
    review: dict[str, Any] | None = None
    stopped: EarlyStop | None = None
    stalled: str | None = None  # why a round could run no experiment, when that ended the campaign


def _write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    tmp = run_dir / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(run_dir / RUN_FILE)


def _recover_meta(run_dir: Path) -> dict[str, Any] | None:
    """campaign.json rebuilt from the store's run record, where a kill came between the two (None: no
    campaign in `run_dir`'s store)."""
    if (run_dir / RUN_FILE).is_file() or not (run_dir / "store.sqlite").is_file():
        return None
    with CampaignStore(run_dir / "store.sqlite") as store:
        runs = [r for cid in store.campaign_ids() for r in store.records(cid, "event", key="run")]
    if not runs:
        return None
    meta = {k: v for k, v in runs[-1].payload.items() if k != "type"}
    _write_meta(run_dir, meta)
    return meta


def proposer_record(llm: LLMSettings | None) -> dict[str, Any]:
    """What a campaign records of its proposer: an LLM endpoint's base_url and model, and whether it
    needs an API key (never the key itself); or that it is the offline proposer."""
    if llm is None or not llm.configured:
        return {"kind": "offline"}
    return {"kind": "llm", "base_url": llm.base_url, "model": llm.model, "api_key": llm.api_key is not None}


def recorded_llm(record: dict[str, Any] | None, console: Console) -> LLMSettings:
    """The LLM settings a reopened campaign runs with: the endpoint it recorded (the environment gives
    the key and the other settings). A campaign that recorded none runs offline, as it began; one whose
    endpoint needs a key the environment lacks stops here with an error that says so."""
    env = LLMSettings()
    if record is None:  # a campaign from before the endpoint was recorded: the environment decides
        return env
    if record.get("kind") != "llm":
        if env.configured:
            console.print(
                f"[yellow]this campaign runs with the offline proposer, as it began; the LLM endpoint in the environment "
                f"({env.base_url or 'the OpenAI API'}) is not used[/]",
                soft_wrap=True,
            )
        return LLMSettings(base_url=None, api_key=None)
    base_url, model = record.get("base_url"), record.get("model", env.model)
    if record.get("api_key") and env.api_key is None:
        raise RunDirError(
            f"this campaign proposes with LLM {model} at {base_url or 'the OpenAI API'}, which needs an API key: set "
            "WETLOOP_LLM_API_KEY to go on with it (the key is never stored with the campaign)"
        )
    if (env.base_url, env.model) != (base_url, model) and (env.base_url is not None or "WETLOOP_LLM_MODEL" in os.environ):
        console.print(
            f"[yellow]this campaign proposes with LLM {model} at {base_url or 'the OpenAI API'} (recorded when it began); "
            f"the environment's {env.model} at {env.base_url or 'the OpenAI API'} is not used[/]",
            soft_wrap=True,
        )
    settings = env.model_dump(exclude={"base_url", "model", "api_key"})
    return LLMSettings(base_url=base_url, model=model, api_key=env.api_key, **settings)


def default_lab(spec: CampaignSpec, run_dir: Path, workers: int | None = None) -> Lab:
    return make_lab(spec, cache_dir=run_dir / "lab", workers=workers)


class Campaign:
    """Open (or create) a campaign in `run_dir` and drive its graph."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        llm: LLMSettings | None = None,
        lab_factory: LabFactory | None = None,
        world_config: Any = None,
        planner_config: PlannerConfig | None = None,
        console: Console | None = None,
        proposer: Any = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        meta_path = self.run_dir / RUN_FILE
        if not meta_path.is_file() and _recover_meta(self.run_dir) is None:
            raise RunDirError(f"{self.run_dir} holds no campaign (no {RUN_FILE}); start one with `wetloop run`")
        self.meta = json.loads(meta_path.read_text())
        self.campaign_id: str = self.meta["campaign_id"]
        self.store = CampaignStore(self.run_dir / "store.sqlite")
        self.spec = self.store.spec(self.campaign_id)
        self.settings = AgentSettings(**self.meta.get("settings", {}))
        self.console = console or Console(stderr=True)
        self._llm = llm  # None: the endpoint the campaign recorded (read when it runs: `status` needs no key)
        self._lab_factory = lab_factory
        self._world_config = world_config
        self._planner_config = planner_config
        self._proposer = proposer
        self._lab: Lab | None = None
        self._conn = sqlite3.connect(self.run_dir / "checkpoints.sqlite", check_same_thread=False)
        self.graph = build_graph(SqliteSaver(self._conn))
        self._config = {"configurable": {"thread_id": self.campaign_id}}
        # Set by the CLI: whether Ctrl-C was pressed. Python cannot raise it in every place it lands (an
        # import's lock callback swallows it, seen in CI), so the run also stops at the next node boundary.
        self.interrupted: Callable[[], bool] = lambda: False

    @classmethod
    def create(cls, spec: CampaignSpec, run_dir: str | Path, *, settings: AgentSettings | None = None, **kwargs: Any) -> Campaign:
        """Start a new campaign in an empty (or new) `run_dir`.

        The campaign record and its run record (settings, proposer) are one commit, then campaign.json is
        written: a process killed in between leaves a campaign that `resume` finds (its campaign.json is
        rebuilt from the store), never a second one."""
        run_dir = Path(run_dir)
        spec = get_world(spec.world).validate_spec(spec)  # every problem of the spec, before anything is written
        check_prior(spec, (settings or AgentSettings()).prior)
        if (run_dir / RUN_FILE).exists() or _recover_meta(run_dir) is not None:
            raise RunDirError(
                f"{run_dir} already holds a campaign; `{command(f'resume --dir {run_dir}')}` continues it, or pick another --dir"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = settings or AgentSettings()
        recorded = getattr(kwargs.get("proposer"), "settings", None)  # an LLMProposer handed in (tests) has its own
        endpoint = recorded if isinstance(recorded, LLMSettings) else kwargs.get("llm")
        meta: dict[str, Any] = {"settings": settings.model_dump(mode="json"), "proposer": proposer_record(endpoint)}
        with CampaignStore(run_dir / "store.sqlite") as store, store.transaction():
            cid = store.create_campaign(spec)
            meta = {"campaign_id": cid, **meta}
            store.append(cid, "event", {"type": "run", **meta}, key="run")
        _write_meta(run_dir, meta)
        return cls(run_dir, **kwargs)

    # -- wiring ------------------------------------------------------------------------------------
    def _context(self) -> LoopContext:
        if self._lab is None:
            factory = self._lab_factory or (lambda spec, d: default_lab(spec, d, self.settings.lab_workers))
            self._lab = factory(self.spec, self.run_dir)
        offline = get_world(self.spec.world).offline_proposer() or OfflineProposer()
        return LoopContext(
            spec=self.spec,
            campaign_id=self.campaign_id,
            store=self.store,
            lab=self._lab,
            planner=self._make_planner(),
            proposer=self._proposer or self._make_proposer(offline),
            fallback=offline,
            models_dir=self.run_dir / "models",
            settings=self.settings,
            world_config=self._world_config,
            console=self.console,
        )

    def _make_planner(self) -> Any:
        """The world's planner (the generic one unless the world brings its own)."""
        return get_world(self.spec.world).make_planner(self.spec, self._planner_config)

    def _make_proposer(self, offline: OfflineProposer) -> Any:
        llm = self._llm if self._llm is not None else recorded_llm(self.meta.get("proposer"), self.console)
        if not llm.configured:
            return offline
        from .llm import LLMProposer

        def progress(characters: int, seconds: float) -> None:
            self.console.print(f"  the LLM has written {characters:,} characters of its reply in {seconds:.0f} s")

        return LLMProposer(llm, on_progress=progress)

    # -- driving -----------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Run (or resume) until the budget is spent, the campaign stops early (its objective at the
        ceiling, `spec.at_ceiling`), or a review is needed; a done campaign runs nothing."""
        snapshot = self.graph.get_state(self._config)
        if snapshot.interrupts or snapshot.values.get("done"):
            return self.outcome()
        # Not `snapshot.next`: a process killed after a node's writes were saved but before the next
        # checkpoint leaves a state whose `next` is empty although the campaign is not done; invoking
        # with None applies those saved writes and goes on (it once ended such a campaign early, exit 0).
        return self._invoke(None if snapshot.values else {"campaign_id": self.campaign_id, "round": 0})

    def pending_review(self) -> dict[str, Any] | None:
        interrupts = self.graph.get_state(self._config).interrupts
        return interrupts[0].value if interrupts else None

    def review(self, decisions: Sequence[Decision]) -> RunOutcome:
        """Hand review decisions to the waiting graph and run on to the next review or the end."""
        if self.pending_review() is None:
            raise RunDirError(f"campaign {self.campaign_id} is not waiting for a review")
        return self._invoke(Command(resume=[d.model_dump(mode="json") for d in decisions]))

    def _invoke(self, payload: Any) -> RunOutcome:
        for _ in self.graph.stream(payload, self._config, context=self._context(), durability="sync", stream_mode="updates"):
            if self.interrupted():  # a Ctrl-C the interpreter could not raise where it landed: stop between nodes
                raise KeyboardInterrupt
        return self.outcome()

    def outcome(self) -> RunOutcome:
        """Where the campaign stands now, read from its last checkpoint (runs nothing)."""
        snapshot = self.graph.get_state(self._config)
        review = snapshot.interrupts[0].value if snapshot.interrupts else None
        done = bool(snapshot.values.get("done"))
        return RunOutcome(
            self.campaign_id,
            done=done,
            round=snapshot.values.get("round", 0),
            review=review,
            stopped=self.store.early_stop(self.campaign_id) if done else None,
            stalled=self.stalled() if done else None,
        )

    def stalled(self) -> str | None:
        """Why the campaign ended with a round that could run no experiment (None: it did not)."""
        recs = self.store.records(self.campaign_id, "event", key="stalled")
        return str(recs[0].payload["reason"]) if recs else None

    def close(self) -> None:
        if self._lab is not None:
            self._lab.close()
        self._conn.close()
        self.store.close()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
