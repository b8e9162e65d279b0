"""`wetloop`: run, resume, review, status, report and bench campaigns from the terminal."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
import typer.main
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from wetloop.campaign import (
    CampaignSpec,
    CampaignStore,
    Intervention,
    Observation,
    SpecError,
    WetloopError,
    default_spec_path,
    get_world,
    load_spec,
    world_names,
)

from ._cli_bench_worldmodel import register_worldmodel_bench
from ._cli_export import register_export_command
from ._cli_lab import register_lab_commands
from ._cli_review import EDIT_HELP, decisions_from_flags, decisions_interactive, print_review
from ._cli_sila import register_sila_commands
from ._hints import command
from .configuration import AgentSettings, LLMSettings
from .errors import AgentError, ReviewError, RunDirError, RunStopped

if TYPE_CHECKING:  # the loop (torch, botorch, langgraph) is imported by the commands that run it, not by --help
    from .runner import Campaign, RunOutcome

__all__ = ["app", "main"]


class _BenchGroup(TyperGroup):
    """`wetloop bench`: each registered world adds its own commands (`World.register_cli`) the first
    time the group is listed or used, so `wetloop --help` and the other commands import no world."""

    _worlds_added = False

    def _add_world_commands(self) -> None:
        if self._worlds_added:
            return
        self._worlds_added = True
        added = typer.Typer()
        register_world_commands(added)
        if added.registered_commands or added.registered_groups:
            for name, command in typer.main.get_group(added).commands.items():
                self.add_command(command, name)

    def list_commands(self, ctx: Any) -> list[str]:
        self._add_world_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        self._add_world_commands()
        return super().get_command(ctx, cmd_name)


app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__)
bench_app = typer.Typer(cls=_BenchGroup, help="Benchmarks that print figures (see the README).")
app.add_typer(bench_app, name="bench")
register_lab_commands(app, bench_app)  # `wetloop lab serve`, `wetloop bench adapters`
register_sila_commands(app)  # `wetloop lab serve-sila`
out = Console()
err = Console(stderr=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Campaign run directory (default: the newest under runs/ that the command applies to)."),
]
RunWanted = Literal["review", "resume", "any"]


def _runs_root() -> Path:
    return Path(os.environ.get("WETLOOP_RUNS_DIR", "runs"))


def _run_state(run_dir: Path) -> str:
    """'review', 'stopped' or 'finished': where the campaign in `run_dir` stands (runs nothing)."""
    from .runner import Campaign

    with Campaign(run_dir) as c:
        if c.pending_review() is not None:
            return "review"
        return "finished" if c.outcome().done else "stopped"


def _default_run(wanted: RunWanted) -> Path:
    """The run folder a command without --dir means: the newest campaign awaiting review (`review`), the
    newest not finished (`resume`), or the newest of all (`status`, `report`). Says so when that is not
    simply the newest folder, so a person never acts on another campaign than they think."""
    runs = [p.parent for p in sorted(_runs_root().glob("*/campaign.json"), key=lambda p: p.stat().st_mtime, reverse=True)]
    if not runs:
        raise RunDirError(f"no campaign under {_runs_root()}/; start one with `{command('run')}`")
    if wanted == "any":
        return runs[0]
    states: list[tuple[Path, str]] = []
    for run_dir in runs:
        try:
            state = _run_state(run_dir)
        except Exception as exc:  # a folder we cannot read is never the default; say why and go on
            err.print(f"[yellow]skipping {run_dir}[/]: {exc}", soft_wrap=True)
            continue
        if state == "review" or (wanted == "resume" and state == "stopped"):
            if states:
                newer = ", ".join(f"{d.name} ({s})" for d, s in states)
                err.print(f"using {run_dir}, the newest campaign {_WANTED_WORDS[wanted]} (newer: {newer})", soft_wrap=True)
            return run_dir
        states.append((run_dir, state))
    listed = "; ".join(f"{d} is {_STATE_WORDS[s]}" for d, s in states[:3])
    raise RunDirError(f"no campaign under {_runs_root()}/ is {_WANTED_WORDS[wanted]} ({listed}); pass --dir to pick one")


_WANTED_WORDS = {"review": "awaiting review", "resume": "left to resume"}
_STATE_WORDS = {"review": "awaiting review", "stopped": "stopped", "finished": "finished"}


def _open(run_dir: Path | None, wanted: RunWanted = "any", **kwargs: Any) -> Campaign:
    from .runner import Campaign

    return Campaign(run_dir or _default_run(wanted), console=err, **kwargs)


def _llm(base_url: str | None, model: str | None) -> LLMSettings:
    # only the options given, so the environment (WETLOOP_LLM_*) fills the rest
    explicit: dict[str, Any] = {k: v for k, v in {"base_url": base_url, "model": model}.items() if v is not None}
    return LLMSettings(**explicit)


# -- run / resume --------------------------------------------------------------------------------
@app.command()
def run(
    spec_file: Annotated[
        Path | None, typer.Argument(help="Campaign spec (YAML). Default: the built-in virtual-patient campaign.")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option("--dir", help="Run directory (default: runs/<spec name>-<time>).")] = None,
    review: Annotated[bool, typer.Option("--review", help="Stop before each submission for a person's review.")] = False,
    rounds: Annotated[int | None, typer.Option(help="Override the spec's number of rounds.")] = None,
    batch: Annotated[int | None, typer.Option(help="Override the spec's batch size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the spec's seed.")] = None,
    world_option: Annotated[
        list[str] | None,
        typer.Option(
            "--world-option",
            help="Override one of the spec's world_options: key=value, the value read as YAML "
            "(a number, true/false, text or a [list]); repeatable.",
        ),
    ] = None,
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible endpoint (else WETLOOP_LLM_BASE_URL; none: offline proposer). Other settings come "
            "from WETLOOP_LLM_API_KEY, _TIMEOUT_S (per wait, default 120), _MAX_RETRIES (3), _MAX_TOKENS (4000), "
            "_MAX_HYPOTHESES (4), _TEMPERATURE (0.2)."
        ),
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name at that endpoint.")] = None,
    prior: Annotated[
        list[Path] | None,
        typer.Option(
            "--prior",
            help="An export of another campaign of the same world and variables (`wetloop export`): the world model "
            "learns from its results too, from the first round on; repeatable.",
        ),
    ] = None,
) -> None:
    """Run a campaign: the built-in default, or a spec file."""
    from .runner import Campaign

    spec = _with_overrides(load_spec(spec_file or default_spec_path()), rounds, batch, seed, _world_options(world_option or []))
    run_dir = run_dir or _runs_root() / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    llm = _llm(llm_base_url, llm_model)
    err.print(
        f"[bold]wetloop[/] campaign [green]{spec.name}[/] in {run_dir} "
        f"({spec.budget.rounds} rounds x {spec.budget.batch}; proposer: {'LLM ' + llm.model if llm.configured else 'offline'})"
    )
    settings = AgentSettings(review=review, prior=tuple(str(p.resolve()) for p in prior or ()))
    with Campaign.create(spec, run_dir, settings=settings, llm=llm, console=err) as c:
        _interruptible(c, c.run)


@app.command()
def resume(run_dir: DirOpt = None) -> None:
    """Continue a stopped or crashed campaign where it left off."""
    with _open(run_dir, "resume") as c:
        outcome = c.outcome()
        if outcome.done:  # nothing to resume: say so, and leave the report as it is
            report = c.run_dir / "report" / "report.html"
            early = f" ({outcome.stopped.describe()})" if outcome.stopped else ""
            err.print(
                f"campaign [green]{c.campaign_id}[/] in {c.run_dir} is finished{early}; its report: {report}", soft_wrap=True
            )
            return
        err.print(f"resuming [green]{c.campaign_id}[/] in {c.run_dir}")
        _interruptible(c, c.run)


def _world_options(items: list[str]) -> dict[str, Any]:
    """`--world-option key=value` pairs as a dict, each value read as YAML (`12` a number, `[80, 160]` a list)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not key=value (e.g. --world-option hours=12)", param_hint="--world-option")
        try:
            options[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"the value of {key.strip()!r} is not YAML: {exc}", param_hint="--world-option") from None
    return options


def _with_overrides(
    spec: CampaignSpec, rounds: int | None, batch: int | None, seed: int | None, world_options: dict[str, Any]
) -> CampaignSpec:
    changes: dict[str, Any] = {}
    if rounds is not None or batch is not None:  # a dict: with_overrides names each bad value as a spec problem
        changes["budget"] = {
            "rounds": spec.budget.rounds if rounds is None else rounds,
            "batch": spec.budget.batch if batch is None else batch,
        }
    if seed is not None:
        changes["seed"] = seed
    if world_options:
        changes["world_options"] = {**spec.world_options, **world_options}
    return spec.with_overrides(**changes) if changes else spec


@contextlib.contextmanager
def _ctrl_c_recorded(c: Campaign) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: where the interpreter swallows
    it (a callback of an import lock prints "Exception ignored ... KeyboardInterrupt" and goes on) the
    campaign stops at its next node boundary instead of running to its end, and that message is dropped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        pressed.set()
        raise KeyboardInterrupt

    default_hook = sys.unraisablehook

    def unraisable(args: Any) -> None:
        if not (pressed.is_set() and isinstance(args.exc_value, KeyboardInterrupt)):
            default_hook(args)

    previous = signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook, c.interrupted = unraisable, pressed.is_set
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = default_hook


def _interruptible(c: Campaign, step: Callable[[], RunOutcome]) -> None:
    """Run the campaign; on Ctrl-C say where it stands and how to go on (every node is checkpointed)."""
    try:
        with _ctrl_c_recorded(c):
            outcome = step()
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted; `{command(f'resume --dir {c.run_dir}')}` continues it from its last checkpoint", soft_wrap=True
        )
        raise typer.Exit(130) from None
    except AgentError:
        raise  # a review or run-folder error already says what to do
    except WetloopError as exc:  # the campaign stopped on an error (a lab, a model): it is checkpointed
        raise RunStopped(f"{exc}\nThe campaign is saved; `{command(f'resume --dir {c.run_dir}')}` continues it.") from exc
    _drive(c, outcome)


def _drive(c: Campaign, outcome: RunOutcome) -> None:
    """Print what a finished run of the graph came to: the review awaited, or the campaign's summary."""
    if outcome.review is not None:
        print_review(out, outcome.review, c.store.hypotheses(c.campaign_id))
        err.print(
            f"\nround {outcome.round} awaits review: [bold]{command(f'review --dir {c.run_dir}')}[/] (add --approve-all to approve the batch)",
            soft_wrap=True,
        )
        return
    _finish(c)
    if outcome.stalled is not None:
        err.print(
            f"[red]error:[/] the campaign stopped: {outcome.stalled}. Widen the spec's start region or limits, or "
            "check what the proposer proposes (the ranking and its removals are in the report).",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _finish(c: Campaign) -> None:
    from .report import summary_rows, write_report

    out.print(summary_table(c.spec, summary_rows(c.store, c.campaign_id), c.campaign_id))
    if line := proposer_line(c.store, c.campaign_id):
        out.print(line, soft_wrap=True, markup=False, highlight=False)
    stopped = c.store.early_stop(c.campaign_id)
    if stopped is not None:
        out.print(f"[bold]{stopped.describe()}[/]", soft_wrap=True)
    paths = write_report(c.store, c.campaign_id, c.run_dir / "report")
    out.print(f"report: {paths.html}\nsummary: {paths.markdown}", soft_wrap=True)


def proposer_line(store: CampaignStore, campaign_id: str) -> str | None:
    """Which proposer each round's candidates came from, and why the offline one stood in where a
    remote one (an LLM) failed; None for a campaign that only ever used the offline proposer."""
    sources: dict[int, set[str]] = {}
    for r in store.records(campaign_id, "proposal"):
        sources.setdefault(r.round or 0, set()).add(str(r.payload.get("source", "")))
    failed: dict[int, str] = {}  # round -> why the remote proposer's reply was not used
    for r in store.records(campaign_id, "invalid_proposal"):
        if r.payload.get("source") in (None, "offline"):
            continue
        if isinstance(r.payload.get("raw"), dict):  # one candidate refused: the reply itself was readable
            failed.setdefault(r.round or 0, "none of its candidates passed validation")
        else:  # the reply as a whole failed (cut off, malformed, refused, endpoint down)
            failed[r.round or 0] = str(r.payload.get("reason", ""))
    remote = sorted({s for found in sources.values() for s in found} - {"offline"})
    fell_back = sorted(rnd for rnd, found in sources.items() if found == {"offline"} and rnd in failed)
    if not remote and not fell_back:
        return None
    rounds, topped_up = len(sources), sum(1 for found in sources.values() if len(found) > 1 and "offline" in found)
    line = f"proposer: {', '.join(remote) or 'none'} in {rounds - len(fell_back)} of {rounds} rounds"
    if topped_up:
        line += f" (the offline proposer added candidates in {topped_up}, where too few were valid to fill the batch)"
    if fell_back:
        why = "; ".join(f"round {rnd}: {failed[rnd]}" for rnd in fell_back[:3]) + ("; ..." if len(fell_back) > 3 else "")
        line += f"; the offline proposer stood in for {len(fell_back)} ({why}); the replies are kept in the store"
    return line


def summary_table(spec: CampaignSpec, rows: list[dict[str, Any]], title: str) -> Table:
    """One line per round: what ran, the world's running total of the objective where it names one
    (e.g. hits), the best result so far, unsafe experiments (where the spec has safety limits),
    predicted vs observed, and what was spent up to the round (in the spec's cost unit)."""
    from .report import round_columns

    table = Table(
        title=f"{title}: {spec.objective.readout} ({spec.objective.direction})",
        caption=f"spent: running total, in {spec.cost.unit}",
        box=box.SIMPLE_HEAD,
    )
    columns = [(c.key, c.short) for c in round_columns(spec) if c.short is not None]
    for key, header in columns:  # numbers never truncated; the intervention wraps instead
        if key == "best_intervention":
            table.add_column(header, ratio=1, min_width=16)
        else:
            table.add_column(header, no_wrap=True, min_width=max(len(header), 5), justify="right")
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    for row in rows:
        cells = [fmt(row.get(key)) for key, _ in columns]
        for i, (key, _) in enumerate(columns):
            if key in ("spent_total", "total") and row.get(key) is not None:
                cells[i] = f"{row[key]:.4g}"
        table.add_row(*cells)
    return table


# -- review ------------------------------------------------------------------------------------
@app.command("review")
def review_cmd(
    run_dir: DirOpt = None,
    approve_all: Annotated[bool, typer.Option("--approve-all", help="Approve every proposal not otherwise decided.")] = False,
    approve: Annotated[list[int] | None, typer.Option("--approve", help="Approve proposal N (repeatable).")] = None,
    reject: Annotated[list[str] | None, typer.Option("--reject", help="Reject: 'N=reason' (repeatable).")] = None,
    edit: Annotated[
        list[str] | None,
        typer.Option("--edit", help=EDIT_HELP),
    ] = None,
    by: Annotated[str | None, typer.Option(help="Reviewer name recorded with each decision.")] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Review on a web page on 127.0.0.1 (its URL, with a token, is printed once).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the --web page (default: a free one).")] = 0,
) -> None:
    """Approve, reject or edit the ranked proposals of the round awaiting review, then continue."""
    if web:
        from .web import INSTALL_HINT, missing_packages

        if missing := missing_packages():
            typer.echo(
                f"`wetloop review --web` needs the server extra (missing: {', '.join(missing)}); install it with:\n  {INSTALL_HINT}",
                err=True,
            )
            raise typer.Exit(2)
        if approve_all or approve or reject or edit:
            raise ReviewError("--web takes the decisions on the page; leave out --approve, --reject, --edit and --approve-all")
        from .web import serve_review

        with _open(run_dir, "review") as c:
            serve_review(
                c, port=port, reviewer=by, announce=lambda text: out.print(text, soft_wrap=True, markup=False, highlight=False)
            )
            _drive(c, c.outcome())
        return
    with _open(run_dir, "review") as c:
        payload = c.pending_review()
        if payload is None:
            raise RunDirError(f"campaign {c.campaign_id} is not waiting for a review")
        print_review(out, payload, c.store.hypotheses(c.campaign_id))
        reviewer = f"person:{by or getpass.getuser()}"
        flags = bool(approve_all or approve or reject or edit)
        if not flags and not sys.stdin.isatty():
            raise ReviewError("no decisions given; pass --approve-all, or --approve/--reject/--edit per proposal")
        decisions = (
            decisions_from_flags(c.spec, payload, reviewer, approve_all, approve or [], reject or [], edit or [])
            if flags
            else decisions_interactive(err, c.spec, payload, reviewer)
        )
        _interruptible(c, lambda: c.review(decisions))


# -- status / report -------------------------------------------------------------------------------
@app.command()
def status(run_dir: DirOpt = None) -> None:
    """Where a campaign stands: its state, experiments, results, quarantined results, and the rounds so far."""
    with _open(run_dir) as c:
        from .report import summary_rows

        store, cid = c.store, c.campaign_id
        out.print(_status_table(c))
        for q in store.records(cid, "quarantine"):
            out.print(f"[yellow]quarantined[/] result of {q.payload['experiment_key']}: {q.payload['reason']}", soft_wrap=True)
        rows = summary_rows(store, cid)
        if rows:
            out.print(summary_table(c.spec, rows, cid))


def _status_table(c: Campaign) -> Table:
    """The campaign's state as label / value rows (no raw dumps: each line reads as a sentence)."""
    store, cid = c.store, c.campaign_id
    results: dict[str, int] = {}
    for o in store.observations(cid).values():
        results[o.status] = results.get(o.status, 0) + 1
    approved = {d.proposal_key for d in store.decisions(cid) if d.action != "reject"}
    pending = c.pending_review()
    state = (
        f"waiting for review of round {pending['round']}: `{command(f'review --dir {c.run_dir}')}`" if pending else _finished(c)
    )
    table = Table(show_header=False, box=None, title=f"campaign {cid} ({c.spec.name})", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in (
        ("state", state),
        ("run directory", str(c.run_dir)),
        ("world", f"{c.spec.world}; lab: {c.spec.lab.adapter}"),
        ("experiments", f"{len(approved)} approved, {store.count(cid, 'submission')} submitted"),
        ("results", ", ".join(f"{n} {s}" for s, n in sorted(results.items())) or "none yet"),
        ("quarantined", str(store.count(cid, "quarantine"))),
        ("world-model versions", str(store.count(cid, "model"))),
        ("invalid proposals", str(store.count(cid, "invalid_proposal"))),
    ):
        table.add_row(label, value)
    return table


def _finished(c: Campaign) -> str:
    outcome = c.outcome()
    if not outcome.done:
        return f"stopped; `{command(f'resume --dir {c.run_dir}')}` continues it"
    return f"finished early: {outcome.stopped.describe()}" if outcome.stopped else "finished"


@app.command()
def report(run_dir: DirOpt = None) -> None:
    """Write the campaign's HTML report and Markdown summary."""
    with _open(run_dir) as c:
        from .report import write_report

        paths = write_report(c.store, c.campaign_id, c.run_dir / "report")
        out.print(f"report: {paths.html}\nsummary: {paths.markdown}", soft_wrap=True)


@bench_app.command("spec")
def bench_spec_cmd(
    spec_file: Annotated[Path, typer.Argument(help="A campaign spec (YAML) of any world.")],
    seeds: Annotated[int, typer.Option(help="Seeds (campaigns) per method.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    work_dir: Annotated[Path | None, typer.Option("--dir", help="Where the benchmark's campaigns run.")] = None,
) -> None:
    """Any spec: ours vs ours with a GP vs ours without learning vs random search vs the best answer (dense simulation)."""
    from .bench_spec import bench_spec, print_spec_bench

    spec = load_spec(spec_file)
    work_dir = work_dir or _runs_root() / f"bench-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    emit_figures(bench_spec(spec, seeds, work_dir, log=err.print), json_out, print_spec_bench, work_dir)


register_export_command(app, lambda run_dir: _open(run_dir))  # `wetloop export RUN`


def emit_figures(figures: Any, json_out: bool, printer: Callable[[Any, Console], None], work_dir: Path | None = None) -> None:
    """A benchmark's figures: saved as `figures.json` in its work dir (when it has one), printed as JSON
    with `--json`, else as the benchmark's table."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "figures.json").write_text(json.dumps(figures, indent=2))
        err.print(f"figures saved to {work_dir / 'figures.json'}", soft_wrap=True)
    if json_out:
        out.print_json(json.dumps(figures))
    else:
        printer(figures, out)


register_worldmodel_bench(bench_app, lambda *a: emit_figures(*a), _runs_root, err)  # `wetloop bench worldmodel`


class _CliTools:
    """What `wetloop` lends each world's own commands (`World.register_cli`, typed by its `CliTools`)."""

    log = err

    def create(
        self, spec: CampaignSpec, run_dir: Path, *, learn: bool = True, shuffle_feedback: bool = False, prior: Sequence[str] = ()
    ) -> Campaign:
        from .runner import Campaign

        settings = AgentSettings(learn=learn, shuffle_feedback=shuffle_feedback, prior=tuple(prior))
        return Campaign.create(spec, run_dir, settings=settings, console=err)

    def export(self, run_dir: Path, out_dir: Path) -> Path:
        from .export import export_campaign

        with CampaignStore(Path(run_dir) / "store.sqlite") as store:
            return export_campaign(store, store.campaign_ids()[0], Path(out_dir), ["jsonl"]).transitions["jsonl"]

    def work_dir(self, name: str) -> Path:
        return _runs_root() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def emit(self, figures: Any, json_out: bool, printer: Callable[[Any, Console], None], work_dir: Path | None = None) -> None:
        emit_figures(figures, json_out, printer, work_dir)

    def ax(self, spec: CampaignSpec, cache_dir: Path, seed: int) -> tuple[list[tuple[Intervention, Observation]], dict[str, Any]]:
        from .bench_ax import ax_campaign, ax_missing

        missing = ax_missing()
        if missing:
            raise RuntimeError(missing)
        return ax_campaign(spec, cache_dir, seed)


def register_world_commands(bench: typer.Typer) -> None:
    """Let every registered world add its own commands to `bench` (e.g. its benchmark); a world whose
    optional packages are missing here adds none."""
    for name in world_names():
        try:
            world = get_world(name)
        except SpecError:
            continue
        world.register_cli(bench, _CliTools())


def main() -> None:
    try:
        app()
    except WetloopError as exc:
        err.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
