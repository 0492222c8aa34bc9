"""The ``agentcore`` command: ask a code-search question, then inspect, fork, resume, export and replay runs.

Every command that reads runs takes ``--db`` (default ``./agentcore.db``), every command takes
``--json`` for machine-readable output, and ``last`` stands for the newest run wherever a run id
is expected. Errors from agentcore become one-line messages with exit code 1, never tracebacks.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from agentcore.cli.agents import agent_for_run, code_agent, make_models, offline_wanted
from agentcore.core.events import LLMCalled, RunStarted
from agentcore.errors import AgentcoreError, ConfigError, RunNotFound
from agentcore.inspection import queries as inspect_run
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool
from agentcore.tools.code.agent_tools import code_tools

DEFAULT_DB = "agentcore.db"
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentcoreError as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from None
        except OSError as e:  # an output file that cannot be written, a vanished input
            where = f": {e.filename}" if e.filename else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None

    return wrapper


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        default=DEFAULT_DB,
        show_default=True,
        type=click.Path(dir_okay=False),
        help="The SQLite file runs are stored in.",
    )(fn)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def _open(db: str, *, must_exist: bool = True) -> SQLiteEventStore:
    if must_exist and not Path(db).exists():
        raise click.ClickException(f"no database at {db}: run `agentcore ask` first, or pass --db PATH")
    return SQLiteEventStore(db)


LAST = "last"


def resolve_run(store: SQLiteEventStore, run_id: str) -> str:
    """``run_id`` itself, or the newest run's id for ``last``; ``RunNotFound`` when there is none."""
    if run_id != LAST:
        store.run(run_id)
        return run_id
    runs = store.runs()
    if not runs:
        raise RunNotFound("the database has no runs yet: run `agentcore ask` first")
    return runs[-1].id


def _out(as_json: bool, data: Any, text: Callable[[], None]) -> None:
    if as_json:
        from agentcore.cli.render import print_json

        print_json(data)
    else:
        text()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentcore")
def cli() -> None:
    """agentcore: LLM agents whose every state change is an event you can replay and inspect."""


def _print_result(result: RunResult, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    state = result.state
    cited = [f.model_dump(mode="json") for f in state.known_facts.values()]
    data = {
        "run_id": result.run_id,
        "status": result.status,
        "reply": result.reply,
        "reason": result.reason,
        "facts": cited,
        "events": state.last_seq,
        "tokens": state.tokens,
        "db": db,
    }

    def text() -> None:
        console.print()
        if result.status == "succeeded":
            console.print("[bold]Answer[/bold]")
            console.print(escape(result.reply or ""))
        elif result.status == "waiting_for_user":
            console.print(f"[bold yellow]The agent asks:[/bold yellow] {escape(result.reason or '')}")
            console.print(f'answer with: agentcore answer {result.run_id} "..." --db {db}')
        else:
            console.print(f"[bold red]Run {result.status}[/bold red]: {escape(result.reason or '')}")
        if cited:
            console.print("\n[bold]Cited facts[/bold]")
            for f in cited:
                where = f"source {f['source']}" + (f", artifact {f['artifact_id']}" if f.get("artifact_id") else "")
                console.print(f"- [bold]{escape(f['key'])}[/bold]: {escape(f['value'])} [dim]({escape(where)})[/dim]")
        rid = result.run_id
        dbo = "" if db == DEFAULT_DB else f" --db {db}"
        console.print(f"\nrun [bold]{rid}[/bold]: {state.last_seq} events, {state.tokens} tokens, stored in {db}")
        console.print("inspect it with:")
        for cmd in (
            f"agentcore events {rid}{dbo}",
            f"agentcore state {rid}{dbo}",
            f"agentcore why {rid} {escape(next(iter(state.known_facts), 'FACT_KEY'))}{dbo}",
            f"agentcore view {rid} -o run.html{dbo}",
        ):
            console.print(f"  {cmd}", highlight=False, markup=False)

    _out(as_json, data, text)


# ------------------------------------------------------------------------------------------------
# ask / resume / answer


@cli.command()
@click.argument("question")
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Repository to search.",
)
@db_option
@click.option("--model", help="Controller model (needs OPENAI_API_KEY or OPENAI_BASE_URL); default $AGENTCORE_MODEL.")
@click.option("--processor-model", help="Processor model; default: the controller model.")
@click.option("--offline", is_flag=True, help="Use the built-in offline model even if a model server is configured.")
@click.option(
    "--tool-mode",
    type=click.Choice(["auto", "native", "json"]),
    default="auto",
    show_default=True,
    help="How the controller's decision is asked for: native tool calls, a JSON object, or detect.",
)
@click.option(
    "--schema-mode",
    type=click.Choice(["auto", "json_schema", "json_object"]),
    default="auto",
    show_default=True,
    help="How the processor's patch is asked for (json_object for servers that reject json_schema).",
)
@click.option("--max-steps", default=12, show_default=True, help="Most controller decisions.")
@click.option("--quiet", is_flag=True, help="No live progress.")
@json_option
@_fail_cleanly
def ask(
    question: str, repo: str, db: str, model: str | None, processor_model: str | None, offline: bool,
    tool_mode: str, schema_mode: str, max_steps: int, quiet: bool, as_json: bool,
) -> None:  # fmt: skip
    """Answer a question about the code in --repo, citing where each fact came from."""
    from agentcore.cli.render import Progress

    if not offline_wanted(offline) and not (
        model or os.environ.get("AGENTCORE_MODEL") or os.environ.get("OPENAI_MODEL")
    ):
        raise click.ClickException(
            "a model server is configured (OPENAI_API_KEY/OPENAI_BASE_URL) but no model name: pass --model NAME "
            "(or set AGENTCORE_MODEL), or use --offline"
        )
    controller, processor = make_models(model, processor_model, offline, tool_mode=tool_mode, schema_mode=schema_mode)
    show = not (quiet or as_json)
    if show:
        if isinstance(controller, OfflineCodeModel):
            console.print(
                "[bold]offline model[/bold]: a built-in, rule-based controller and processor for code search "
                "(no LLM, no network). Set OPENAI_API_KEY or OPENAI_BASE_URL to use a real model.",
            )
        else:
            console.print(f"model: {escape(controller.name)} (processor: {escape(processor.name)})")
    store = _open(db, must_exist=False)
    with store:
        agent = code_agent(
            repo, store, controller, processor, max_steps=max_steps, on_event=Progress(console) if show else None
        )
        result = agent.run_sync(question)
        _print_result(result, store, db, as_json)
    if result.status == "failed":
        sys.exit(1)


@cli.command()
@click.argument("run_id")
@db_option
@click.option("--offline", is_flag=True, help="Continue with the offline model.")
@json_option
@_fail_cleanly
def resume(run_id: str, db: str, offline: bool, as_json: bool) -> None:
    """Continue a run that was interrupted or forked (a finished run is left as it is)."""
    from agentcore.cli.render import Progress

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        state = store.state_at(run_id)
        if state.finished:
            _out(as_json, {"run_id": run_id, "status": state.status, "resumed": False},
                 lambda: console.print(f"run {run_id} already {state.status}; nothing to resume"))  # fmt: skip
            return
        agent = agent_for_run(store, run_id, offline)
        if not as_json:
            agent.on_event = Progress(console)
        _print_result(agent.resume_sync(run_id), store, db, as_json)


@cli.command()
@click.argument("run_id")
@click.argument("text")
@db_option
@click.option("--offline", is_flag=True, help="Continue with the offline model.")
@json_option
@_fail_cleanly
def answer(run_id: str, text: str, db: str, offline: bool, as_json: bool) -> None:
    """Answer the question a run is waiting on, and let it continue."""
    from agentcore.cli.render import Progress

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        agent = agent_for_run(store, run_id, offline)
        if not as_json:
            agent.on_event = Progress(console)
        _print_result(agent.answer_sync(run_id, text), store, db, as_json)


# ------------------------------------------------------------------------------------------------
# inspection


@cli.command()
@db_option
@json_option
@_fail_cleanly
def runs(db: str, as_json: bool) -> None:
    """List runs: id, task, status, events, duration, tokens."""
    from agentcore.cli.render import table

    with _open(db) as store:
        rows = inspect_run.list_runs(store)
    for r in rows:
        r["duration"] = f"{r['duration_s']:.1f}s" if r.get("duration_s") is not None else ""
    _out(as_json, rows, lambda: table(console, rows, ["id", "task", "status", "events", "duration", "tokens"]))


@cli.command()
@click.argument("run_id")
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable), e.g. tool_finished.")
@click.option("--since", type=int, help="First seq to show.")
@click.option("--until", type=int, help="Last seq to show.")
@db_option
@json_option
@_fail_cleanly
def events(run_id: str, types: tuple[str, ...], since: int | None, until: int | None, db: str, as_json: bool) -> None:
    """Show a run's events, oldest first."""
    from agentcore.cli.render import table

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        rows = inspect_run.list_events(store, run_id, types or None, since, until)
    _out(as_json, rows, lambda: table(console, rows, ["seq", "type", "caused_by", "summary"]))


@cli.command()
@click.argument("run_id")
@click.option("--at", "seq", type=int, help="Fold events up to and including this seq (default: latest).")
@db_option
@json_option
@_fail_cleanly
def state(run_id: str, seq: int | None, db: str, as_json: bool) -> None:
    """Show the state of a run at a seq."""
    from agentcore.cli.render import print_json

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        doc = inspect_run.state_at(store, run_id, seq)
    print_json(doc)


@cli.command()
@click.argument("run_id")
@click.argument("a", type=int)
@click.argument("b", type=int)
@db_option
@json_option
@_fail_cleanly
def diff(run_id: str, a: int, b: int, db: str, as_json: bool) -> None:
    """Show the RFC 6902 difference between the states at seqs A and B."""
    from agentcore.cli.render import print_json

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        ops = inspect_run.diff(store, run_id, a, b)
    if as_json:
        print_json(ops)
        return
    if not ops:
        console.print("no difference")
    for op in ops:
        value = "" if "value" not in op else " " + inspect_run._clip(repr(op["value"]), 100)
        console.print(f"{op['op']:<8} {escape(op['path'])}{escape(value)}")


@cli.command()
@click.argument("run_id")
@click.argument("fact_key")
@db_option
@json_option
@_fail_cleanly
def why(run_id: str, fact_key: str, db: str, as_json: bool) -> None:
    """Explain a fact: fact <- patch <- processor call <- tool result and artifact <- decision."""
    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        data = inspect_run.why(store, run_id, fact_key)

    def text() -> None:
        f = data["fact"]
        console.print(f"[bold]{escape(f['key'])}[/bold] = {escape(f['value'])}")
        for link in data["chain"]:
            art = f"  artifact {link['artifact']}" if link.get("artifact") else ""
            console.print(
                f"  <- seq {link['seq']:>4} {escape(link['type'])}: {escape(str(link.get('summary', '')))}{art}"
            )
        if len(data["history"]) > 1:
            console.print(f"set at seqs {', '.join(map(str, data['history']))} (the latest value wins)")

    _out(as_json, data, text)


@cli.command()
@click.argument("artifact_id")
@click.option("--limit", default=4096, show_default=True, help="Bytes to show.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the whole artifact to this file.")
@db_option
@json_option
@_fail_cleanly
def artifact(artifact_id: str, limit: int, output: str | None, db: str, as_json: bool) -> None:
    """Show (or save) a stored artifact."""
    with _open(db) as store:
        if output:
            Path(output).write_bytes(store.artifacts.read(artifact_id))
        data = inspect_run.artifact_preview(store, artifact_id, limit)

    def text() -> None:
        console.print(f"[dim]{data['id']}  {data['media_type']}  {data['size']} bytes[/dim]")
        console.print(data["preview"], markup=False)
        if data["truncated"]:
            console.print(f"[dim]… {data['size'] - limit} more bytes (use --limit or -o FILE)[/dim]")

    _out(as_json, data, text)


@cli.command()
@click.argument("run_id")
@click.option("--at", "seq", type=int, required=True, help="Keep the parent's events up to this seq.")
@db_option
@json_option
@_fail_cleanly
def fork(run_id: str, seq: int, db: str, as_json: bool) -> None:
    """Fork a run at a seq (copy-free); continue the fork with `agentcore resume`."""
    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        new_id = store.fork(run_id, seq)
    _out(as_json, {"run_id": new_id, "parent_run_id": run_id, "forked_at_seq": seq},
         lambda: console.print(f"forked {run_id} at seq {seq}: new run {new_id}"))  # fmt: skip


@cli.command()
@click.argument("run_id")
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(exists=True, dir_okay=False),
    help='Price every call again from this JSON file ({"model": {"input_mtok": $, "output_mtok": $}}), '
    "then genai-prices; by default the cost recorded with each call is shown.",
)
@db_option
@json_option
@_fail_cleanly
def usage(run_id: str, prices_file: str | None, db: str, as_json: bool) -> None:
    """Tokens and dollars used by a run, per role and per step ("unknown" when a model has no price)."""
    from agentcore.cli.render import table

    price = _read_prices(prices_file) if prices_file else None
    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        data = inspect_run.usage(store, run_id, price=price)

    def cost(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "cost_usd": "unknown" if row["cost_usd"] is None else f"${row['cost_usd']:.6f}"}

    def text() -> None:
        rows = [{"role": k, **v} for k, v in data["by_role"].items()] + [{"role": "total", **data["total"]}]
        columns = ["role", "calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]
        table(console, [cost(r) for r in rows], columns, title="by role")
        steps = [{"step": k, **v} for k, v in data["by_step"].items()]
        table(console, [cost(r) for r in steps], ["step", "calls", "total_tokens", "cost_usd"], title="by step")

    _out(as_json, data, text)


def _read_prices(path: str) -> Callable[[LLMCalled], float | None]:
    """A per-call pricer from a JSON price file (user prices first, then genai-prices)."""
    from agentcore.models.prices import pricer

    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read prices from {path}: {e}") from None
    price = pricer(table)
    return lambda e: price(e.model, e.usage, e.at)


# ------------------------------------------------------------------------------------------------
# traces and the HTML view


@cli.command(name="export")
@click.argument("run_id")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The trace file to write.")
@db_option
@json_option
@_fail_cleanly
def export_cmd(run_id: str, output: str, db: str, as_json: bool) -> None:
    """Export a run as a JSON Lines trace file (events and the artifacts they reference)."""
    from agentcore.storage.trace import export_run

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        info = export_run(store, run_id, output)
    _out(
        as_json,
        info,
        lambda: console.print(f"wrote {output}: {info.get('events')} events, {info.get('artifacts')} artifacts"),
    )


@cli.command(name="import")
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@db_option
@json_option
@_fail_cleanly
def import_cmd(trace_file: str, db: str, as_json: bool) -> None:
    """Import a trace file as a run (all or nothing)."""
    from agentcore.storage.trace import import_trace

    with _open(db, must_exist=False) as store:
        run_id = import_trace(store, trace_file)
    _out(as_json, {"run_id": run_id}, lambda: console.print(f"imported {trace_file} as run {run_id}"))


@cli.command()
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--live-tools", is_flag=True, help="Re-execute the tools instead of answering them from the trace.")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    help="Repository for --live-tools (default: the recorded one).",
)
@json_option
@_fail_cleanly
def replay(trace_file: str, live_tools: bool, repo: str | None, as_json: bool) -> None:
    """Re-run a trace offline and report the first divergence from the recording."""
    from agentcore.replay.replayer import replay_trace
    from agentcore.storage.trace import read_trace

    trace = read_trace(trace_file)
    started = next((e for e in trace.events if isinstance(e, RunStarted)), None)
    if started is None:
        raise click.ClickException(f"{trace_file} has no run_started event: there is nothing to replay")
    tools: list[Tool] | None = None
    if live_tools:
        meta = started.config.get("metadata") or {}
        root = repo or meta.get("repo")
        if not root:
            raise click.ClickException("this trace does not record its repository: pass --repo PATH")
        tools = code_tools(root)
    report = replay_trace(trace, tools=tools, live_tools=live_tools)
    div = report.divergence
    data = {
        "ok": report.ok,
        "original_run_id": report.original_run_id,
        "status": report.status,
        "expected_events": report.expected_events,
        "actual_events": report.actual_events,
        "divergence": None if div is None else {"seq": div.seq, "fields": list(div.fields)},
        "mismatch": report.mismatch,
        "unused": len(report.unused),
        "summary": report.describe(),
    }

    def text() -> None:
        console.print(report.describe(), markup=False)

    _out(as_json, data, text)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    default="run.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@db_option
@json_option
@_fail_cleanly
def view(run_id: str, output: str, db: str, as_json: bool) -> None:
    """Write a self-contained HTML page of a run (timeline, state at any seq, diffs, provenance)."""
    from agentcore.inspection.html import render_html

    with _open(db) as store:
        run_id = resolve_run(store, run_id)
        store.run(run_id)
        page = render_html(store, run_id)
    Path(output).write_text(page, encoding="utf-8")
    _out(as_json, {"run_id": run_id, "output": output, "bytes": len(page.encode())},
         lambda: console.print(f"wrote {output} ({len(page.encode())} bytes): open it in a browser"))  # fmt: skip


def main() -> None:
    """Entry point of the ``agentcore`` script."""
    try:
        cli(standalone_mode=True)
    except RunNotFound as e:  # pragma: no cover - commands translate errors already
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":  # pragma: no cover  (python -m agentcore.cli.commands)
    main()
