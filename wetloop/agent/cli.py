"""`wetloop`: run, resume, review, status, report and bench campaigns from the terminal."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from wetloop.campaign import (
    Budget,
    CampaignSpec,
    Decision,
    Intervention,
    SpecError,
    WetloopError,
    default_spec_path,
    get_world,
    load_spec,
    world_names,
)

from ._cli_lab import register_lab_commands
from ._cli_sila import register_sila_commands
from ._edits import parse_edit_text
from ._hints import command
from .configuration import AgentSettings, LLMSettings
from .errors import ReviewError, RunDirError

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

DirOpt = Annotated[Path | None, typer.Option("--dir", help="Campaign run directory (default: the latest under runs/).")]


def _runs_root() -> Path:
    return Path(os.environ.get("WETLOOP_RUNS_DIR", "runs"))


def _latest_run() -> Path:
    runs = sorted(_runs_root().glob("*/campaign.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise RunDirError(f"no campaign under {_runs_root()}/; start one with `wetloop run`")
    return runs[-1].parent


def _open(run_dir: Path | None, **kwargs: Any) -> Campaign:
    from .runner import Campaign

    return Campaign(run_dir or _latest_run(), console=err, **kwargs)


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
        str | None, typer.Option(help="OpenAI-compatible endpoint (else WETLOOP_LLM_BASE_URL; none: offline proposer).")
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name at that endpoint.")] = None,
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
    with Campaign.create(spec, run_dir, settings=AgentSettings(review=review), llm=llm, console=err) as c:
        _interruptible(c, c.run)


@app.command()
def resume(run_dir: DirOpt = None) -> None:
    """Continue a stopped or crashed campaign where it left off."""
    with _open(run_dir) as c:
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
    if rounds is not None or batch is not None:
        changes["budget"] = Budget(rounds=rounds or spec.budget.rounds, batch=batch or spec.budget.batch)
    if seed is not None:
        changes["seed"] = seed
    if world_options:
        changes["world_options"] = {**spec.world_options, **world_options}
    return spec.with_overrides(**changes) if changes else spec


def _interruptible(c: Campaign, step: Callable[[], RunOutcome]) -> None:
    """Run the campaign; on Ctrl-C say where it stands and how to go on (every node is checkpointed)."""
    try:
        outcome = step()
    except KeyboardInterrupt:
        err.print(
            f"\ninterrupted; `{command(f'resume --dir {c.run_dir}')}` continues it from its last checkpoint", soft_wrap=True
        )
        raise typer.Exit(130) from None
    _drive(c, outcome)


def _drive(c: Campaign, outcome: RunOutcome) -> None:
    """Print what a finished run of the graph came to: the review awaited, or the campaign's summary."""
    if outcome.review is not None:
        _print_review(outcome.review)
        err.print(
            f"\nround {outcome.round} awaits review: [bold]{command(f'review --dir {c.run_dir}')}[/] (add --approve-all to approve the batch)",
            soft_wrap=True,
        )
        return
    _finish(c)


def _finish(c: Campaign) -> None:
    from .report import summary_rows, write_report

    out.print(summary_table(c.spec, summary_rows(c.store, c.campaign_id), c.campaign_id))
    stopped = c.store.early_stop(c.campaign_id)
    if stopped is not None:
        out.print(f"[bold]{stopped.describe()}[/]", soft_wrap=True)
    paths = write_report(c.store, c.campaign_id, c.run_dir / "report")
    out.print(f"report: {paths.html}\nsummary: {paths.markdown}", soft_wrap=True)


def summary_table(spec: CampaignSpec, rows: list[dict[str, Any]], title: str) -> Table:
    """One line per round: what ran, the best safe result so far, unsafe days, predicted vs observed,
    and what was spent up to the round (in the spec's cost unit)."""
    table = Table(
        title=f"{title}: {spec.objective.readout} ({spec.objective.direction})",
        caption=f"spent: running total, in {spec.cost.unit}",
        box=box.SIMPLE_HEAD,
    )
    columns = [
        ("round", "round"),
        ("experiments", "run"),
        ("best_objective", "best"),
        ("best_intervention", "best intervention"),
        ("unsafe_days", "unsafe"),
        ("predicted_mean", "pred."),
        ("observed_mean", "obs."),
        ("spent_total", "spent"),
    ]
    for key, header in columns:  # numbers never truncated; the intervention wraps instead
        if key == "best_intervention":
            table.add_column(header, ratio=1, min_width=16)
        else:
            table.add_column(header, no_wrap=True, min_width=max(len(header), 5), justify="right")
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    for row in rows:
        cells = [fmt(row.get(key)) for key, _ in columns]
        cells[-1] = "-" if row.get("spent_total") is None else f"{row['spent_total']:.4g}"
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
        typer.Option("--edit", help="Edit: 'N:name=value,name=value' (repeatable); a set as item:level+item:level or none."),
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

        with _open(run_dir) as c:
            serve_review(
                c, port=port, reviewer=by, announce=lambda text: out.print(text, soft_wrap=True, markup=False, highlight=False)
            )
            _drive(c, c.outcome())
        return
    with _open(run_dir) as c:
        payload = c.pending_review()
        if payload is None:
            raise RunDirError(f"campaign {c.campaign_id} is not waiting for a review")
        _print_review(payload)
        reviewer = f"person:{by or getpass.getuser()}"
        flags = bool(approve_all or approve or reject or edit)
        if not flags and not sys.stdin.isatty():
            raise ReviewError("no decisions given; pass --approve-all, or --approve/--reject/--edit per proposal")
        decisions = (
            _decisions_from_flags(c.spec, payload, reviewer, approve_all, approve or [], reject or [], edit or [])
            if flags
            else _decisions_interactive(c.spec, payload, reviewer)
        )
        _interruptible(c, lambda: c.review(decisions))


def _print_review(payload: dict[str, Any]) -> None:
    table = Table(title=f"round {payload['round']}: proposals awaiting review")
    for col in ("#", "intervention", "predicted", "sd", "P(unsafe)", "info gain", "hypothesis"):
        table.add_column(col)
    for p in payload["selected"]:
        s = p["score"]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(
            str(p["index"]),
            p["describe"],
            fmt(s["expected_value"]),
            fmt(s["value_std"]),
            fmt(s["p_unsafe"]),
            fmt(s["info_gain"]),
            p["hypothesis_id"] or "",
        )
    out.print(table)
    for r in payload["removed"][:10]:
        out.print(f"  removed for safety: {r['describe']}: {r['reason']}")


def _parse_edit(spec: CampaignSpec, text: str, base: dict[str, Any]) -> Intervention:
    x = parse_edit_text(spec, base, text)  # the web page reads its edits with the same parser
    problems = x.violations(spec)
    if problems:
        raise ReviewError(
            "edit refused: " + "; ".join(problems) + ". Nothing was submitted; review again with values inside the limits.",
            decision=text,
        )
    return x


def _decisions_from_flags(spec, payload, by, approve_all, approve, reject, edit) -> list[Decision]:
    by_index = {p["index"]: p for p in payload["selected"]}
    chosen: dict[int, Decision] = {}
    flag: dict[int, str] = {}

    def index(text: str, given: str) -> int:
        if not text.strip().isdigit() or int(text) not in by_index:
            raise ReviewError(f"no proposal #{text.strip()} in this round; choose from {sorted(by_index)}")
        i = int(text)
        if i in flag:  # two flags on one proposal: refuse rather than let the last one silently win
            raise ReviewError(f"proposal #{i} has two decisions ({flag[i]} and {given}); give each proposal one decision")
        flag[i] = given
        return i

    for n in approve:
        i = index(str(n), f"--approve {n}")
        chosen[i] = Decision(proposal_key=by_index[i]["proposal_key"], action="approve", by=by)
    for item in reject:
        n, _, reason = item.partition("=")
        i = index(n, f"--reject {item!r}")
        if not reason.strip():
            raise ReviewError(f"--reject {item!r} needs a reason: --reject '{i}=why'")
        chosen[i] = Decision(proposal_key=by_index[i]["proposal_key"], action="reject", by=by, reason=reason.strip())
    for item in edit:
        n, _, values = item.partition(":")
        i = index(n, f"--edit {item!r}")
        edited = _parse_edit(spec, values, by_index[i]["values"])
        chosen[i] = Decision(
            proposal_key=by_index[i]["proposal_key"], action="edit", by=by, edited=edited, reason="edited in review"
        )
    for i, p in by_index.items():
        if i not in chosen:
            if not approve_all:
                raise ReviewError(f"no decision for proposal #{i}; decide each or pass --approve-all for the rest")
            chosen[i] = Decision(proposal_key=p["proposal_key"], action="approve", by=by)
    return [chosen[i] for i in sorted(chosen)]


def _decisions_interactive(spec, payload, by) -> list[Decision]:
    decisions = []
    for p in payload["selected"]:
        while True:
            choice = typer.prompt(f"#{p['index']} {p['describe']}: [a]pprove, [r]eject, [e]dit", default="a").strip().lower()
            try:
                if choice.startswith("a"):
                    decisions.append(Decision(proposal_key=p["proposal_key"], action="approve", by=by))
                elif choice.startswith("r"):
                    reason = typer.prompt("reason")
                    decisions.append(Decision(proposal_key=p["proposal_key"], action="reject", by=by, reason=reason))
                elif choice.startswith("e"):
                    edited = _parse_edit(spec, typer.prompt("new values (name=value,...)"), p["values"])
                    decisions.append(
                        Decision(proposal_key=p["proposal_key"], action="edit", by=by, edited=edited, reason="edited in review")
                    )
                else:
                    continue
                break
            except (ReviewError, ValueError) as exc:
                err.print(f"[red]{exc}[/]")
    return decisions


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
        ("experiments", f"{store.count(cid, 'experiment')} approved, {store.count(cid, 'submission')} submitted"),
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


class _CliTools:
    """What `wetloop` lends each world's own commands (`World.register_cli`, typed by its `CliTools`)."""

    log = err

    def create(self, spec: CampaignSpec, run_dir: Path) -> Campaign:
        from .runner import Campaign

        return Campaign.create(spec, run_dir, settings=AgentSettings(), console=err)

    def work_dir(self, name: str) -> Path:
        return _runs_root() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def emit(self, figures: Any, json_out: bool, printer: Callable[[Any, Console], None], work_dir: Path | None = None) -> None:
        emit_figures(figures, json_out, printer, work_dir)


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
