"""Commands that move runs in and out: ``export``, ``import``, ``replay`` (stored with ``--db``), ``view``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from agentcore.cli.outputs import check_output, check_stdout
from agentcore.cli.support import (
    EXIT_FAILED,
    RUN_ID,
    BadTarget,
    console,
    db_option,
    db_target,
    err_console,
    inert,
    json_option,
    open_db,
    print_json,
    safe,
    shown,
    with_store,
)
from agentcore.storage.sqlite.store import SQLiteEventStore

__all__ = ("COMMANDS",)


@click.command(name="export")
@click.argument("run_id", type=RUN_ID)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The trace file to write.")
@click.option("--otlp", metavar="URL", help="Send the run as one OpenTelemetry trace to this OTLP/HTTP URL instead.")
@click.option("--content", is_flag=True, help="With --otlp: also send raw content (prompts, responses, tool payloads).")
@click.option(
    "--header", "headers", multiple=True, metavar="NAME=VALUE", help="With --otlp: an HTTP header (repeatable)."
)
@json_option
@with_store()
def export_cmd(
    run_id: str,
    output: str | None,
    otlp: str | None,
    content: bool,
    headers: tuple[str, ...],
    store: SQLiteEventStore,
    db: str,
    as_json: bool,
) -> None:
    """Export a run as a JSON Lines trace file (-o FILE), or as an OpenTelemetry trace (--otlp URL)."""
    if (output is None) == (otlp is None):
        raise click.UsageError("give exactly one of -o FILE (a trace file) or --otlp URL (an OpenTelemetry receiver)")
    if otlp is not None:
        return _export_otlp(store, run_id, otlp, content, headers, as_json)
    from agentcore.storage.trace import export_run

    assert output is not None
    check_output(output, db)
    info = {**export_run(store, run_id, output), "run_id": run_id, "output": output}
    if as_json:
        print_json(info)
    else:
        err_console.print(f"wrote {safe(output)}: {info.get('events')} events, {info.get('artifacts')} artifacts")


def _export_otlp(store: Any, run_id: str, url: str, content: bool, headers: tuple[str, ...], as_json: bool) -> None:
    try:
        from agentcore.export.otel import export_otlp
    except ImportError as e:
        raise click.UsageError(f"--otlp needs the otel extra: pip install 'agentcore[otel]' ({e})") from None
    if any("=" not in h for h in headers):
        raise click.UsageError("--header takes NAME=VALUE")
    pairs = dict(h.split("=", 1) for h in headers)
    from agentcore.errors import ConfigError

    try:
        info = export_otlp(store, run_id, url, headers=pairs, content=content)
    except ConfigError as e:  # a URL that is not http(s): a bad value, exit 2 like a bad --db
        raise BadTarget(inert(str(e))) from None
    if as_json:
        print_json(info)
    else:
        err_console.print(
            f"sent run {safe(run_id)} to {safe(info['endpoint'])}: trace {info['trace_id']}, {info['spans']} spans"
        )


def _already_imported(store: SQLiteEventStore, trace: Any) -> str | None:
    """The id of a stored run holding exactly the trace's events (the same trace imported before)."""
    from agentcore.errors import RunNotFound

    original = trace.run.get("id") or (trace.events[0].run_id if trace.events else None)
    if not isinstance(original, str) or not original:
        return None
    try:
        info = store.run(original)
    except RunNotFound:
        return None
    if info.last_seq != len(trace.events) or info.parent_run_id is not None:
        return None

    def body(e: Any) -> Any:
        return e.model_dump(mode="json", exclude={"run_id"})

    stored = [body(e) for e in store.read(original)]
    return original if stored == [body(e) for e in trace.events] else None


@click.command(name="import")
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@json_option
@with_store(must_exist=False)
def import_cmd(trace_file: str, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Import a trace file as a run (all or nothing); the run id goes to stdout.

    Importing the same trace again writes nothing and names the run that holds it.
    """
    from agentcore.storage.trace import import_trace, read_trace

    trace = read_trace(trace_file)
    existing = _already_imported(store, trace)
    run_id = existing or import_trace(store, trace)
    if as_json:
        print_json({"run_id": run_id, "already_imported": existing is not None, "trace": trace_file})
        return
    if existing:
        err_console.print(f"{safe(trace_file)} is already imported as run {safe(run_id)}; nothing written")
    else:
        err_console.print(f"imported {safe(trace_file)} as run")
    console.print(run_id, markup=False)


def _live_models(model: str | None, processor_model: str | None, planner_model: str | None) -> dict[str, Any]:
    """Live models by role for a counterfactual replay (the offline model by its name, else OpenAI-compatible)."""
    from agentcore.models.offline import OFFLINE_MODEL_NAME, OfflineCodeModel
    from agentcore.models.openai import OpenAIChatModel

    named = {"controller": model, "processor": processor_model, "planner": planner_model}
    return {
        role: OfflineCodeModel() if name == OFFLINE_MODEL_NAME else OpenAIChatModel(name)
        for role, name in named.items()
        if name
    }


def run_replay(
    trace_file: str, *, live_tools: bool, repo: str | None, store: SQLiteEventStore | None, live: dict[str, Any]
) -> Any:
    """Replay ``trace_file`` (tools from the trace, or the code tools over ``repo``, which the user names)."""
    from agentcore.core.events import RunStarted
    from agentcore.replay.replayer import replay_trace
    from agentcore.storage.trace import read_trace
    from agentcore.tools.code.agent_tools import code_tools

    trace = read_trace(trace_file)
    started = next((e for e in trace.events if isinstance(e, RunStarted)), None)
    if started is None:
        raise click.ClickException(f"{trace_file} has no run_started event: there is nothing to replay")
    tools = None
    if live_tools:
        meta = started.config.get("metadata")
        recorded = meta.get("repo") if isinstance(meta, dict) else None
        if not repo:
            shown = f" (it records {recorded!r})" if isinstance(recorded, str) else ""
            raise click.UsageError(
                f"--live-tools needs --repo PATH: a trace file chooses no directory for the tools to read{shown}"
            )
        tools = code_tools(repo)
    return replay_trace(trace, tools=tools, live_tools=live_tools, store=store, live=live)


def replay_report_data(report: Any, *, stored: bool) -> dict[str, Any]:
    div = report.divergence
    return {
        "ok": report.ok,
        "run_id": report.run_id if stored else None,
        "original_run_id": report.original_run_id,
        "status": report.status,
        "expected_events": report.expected_events,
        "actual_events": report.actual_events,
        "divergence": None if div is None else {"seq": div.seq, "fields": list(div.fields)},
        "mismatch": report.mismatch,
        "unused": len(report.unused),
        "summary": report.describe(),
        "live_roles": list(report.live_roles),
        "state_diff": report.state_diff,
    }


@click.command()
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--live-tools", is_flag=True, help="Re-execute the tools instead of answering them from the trace.")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    help="Repository --live-tools may read (required: the repository a trace records is only shown).",
)
@click.option("--model", help="Answer the controller with this live model instead of the recording.")
@click.option("--processor-model", help="Answer the processor with this live model (counterfactual replay).")
@click.option("--planner-model", help="Answer the planner of a plan run with this live model.")
@db_option
@json_option
def replay(
    trace_file: str, live_tools: bool, repo: str | None, model: str | None, processor_model: str | None,
    planner_model: str | None, db: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Re-run a trace (agent or plan run) and report the first divergence from the recording (exit 1 if any).

    Models answer from the trace unless --model/--processor-model/--planner-model make a role live
    (agentcore-offline names the offline model). With --db (or the group's --db / $AGENTCORE_DB)
    the replayed run is stored there and its id printed, so `events`, `state`, `diff` and `view`
    work on it.
    """
    ctx = click.get_current_context()
    store, target = None, db_target(ctx, db)
    if db is not None or ctx.find_root().params.get("db"):
        store = open_db(target, must_exist=False)
        ctx.call_on_close(store.close)
    live = _live_models(model, processor_model, planner_model)
    report = run_replay(trace_file, live_tools=live_tools, repo=repo, store=store, live=live)
    data = replay_report_data(report, stored=store is not None)
    if as_json:
        print_json(data)
    else:
        console.print(report.describe(), markup=False)
        if store is not None:
            console.print(f"stored as run {report.run_id} in {shown(target)}", markup=False)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.option(
    "-o",
    "--output",
    default="run.html",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The HTML file to write (- for stdout).",
)
@json_option
@with_store()
def view(run_id: str, output: str, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Write a self-contained HTML page of a run (timeline, state at any seq, diffs, provenance, plan DAG)."""
    from agentcore.inspection.html import render_html

    check_output(output, db)
    check_stdout(output, as_json)
    page = render_html(store, run_id)
    size = len(page.encode())
    if output == "-":
        click.echo(page, nl=False)
        return
    Path(output).write_text(page, encoding="utf-8")
    if as_json:
        print_json({"run_id": run_id, "output": output, "bytes": size})
    else:
        err_console.print(f"wrote {safe(output)} ({size} bytes): open it in a browser")


COMMANDS = (export_cmd, import_cmd, replay, view)
