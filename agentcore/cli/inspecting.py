"""Commands that read runs: ``runs``, ``events``, ``state``, ``diff``, ``why``, ``artifact``, ``fork``, ``usage``.

Each is a thin layer over ``agentcore.inspection.queries``: ``with_store`` opens the store (on
PostgreSQL with one connection, no pool: each command is one short process) and resolves ``last``; the data goes to stdout as a table, text or ``--json``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from agentcore.cli import support
from agentcore.cli.outputs import check_output, check_stdout
from agentcore.cli.support import (
    RUN_ID,
    SEQ,
    check_seqs,
    console,
    err_console,
    inert,
    json_option,
    print_json,
    safe,
    with_store,
)
from agentcore.core.events import EVENT_TYPES, LLMCalled
from agentcore.errors import ConfigError, InvalidForkPoint
from agentcore.inspection import queries as inspect_run

if TYPE_CHECKING:  # a PostgreSQL target never loads the SQLite store's modules
    from agentcore.storage.sqlite.store import SQLiteEventStore

__all__ = ("COMMANDS", "event_type")

_BY_CLASS = {cls.__name__.lower(): name for name, cls in EVENT_TYPES.items()}


def event_type(name: str) -> str:
    """``tool_finished`` for ``tool_finished``, ``ToolFinished`` or ``toolfinished``; unknown names stay."""
    if name in EVENT_TYPES:
        return name
    return _BY_CLASS.get(name.replace("_", "").replace("-", "").lower(), name)


def _types(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(event_type(v) for v in value)
    unknown = sorted({n for n in names if n not in EVENT_TYPES})
    if unknown:
        known = ", ".join(f"{n} ({EVENT_TYPES[n].__name__})" for n in sorted(EVENT_TYPES))
        raise click.BadParameter(f"unknown event type {', '.join(map(inert, unknown))}; known: {known}")
    return names


def _table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    from agentcore.cli.render import table

    table(console, rows, columns, title=title)


@click.command()
@json_option
@with_store(pool=False)
def runs(store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """List runs: id, task, status, events, duration, tokens."""
    rows = inspect_run.list_runs(store)
    for r in rows:
        r["duration"] = f"{r['duration_s']:.1f}s" if r.get("duration_s") is not None else ""
    if as_json:
        print_json(rows)
    else:
        _table(rows, ["id", "task", "status", "events", "duration", "tokens"])


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.option(
    "--type", "types", multiple=True, callback=_types,
    help="Only events of this type (repeatable): tool_finished or ToolFinished.",
)  # fmt: skip
@click.option("--since", type=SEQ, help="First seq to show.")
@click.option("--until", type=SEQ, help="Last seq to show.")
@json_option
@with_store(pool=False)
def events(
    run_id: str, types: tuple[str, ...], since: int | None, until: int | None, store: SQLiteEventStore, db: str,
    as_json: bool,
) -> None:  # fmt: skip
    """Show a run's events, oldest first."""
    if since is not None and until is not None and since > until:
        raise click.BadParameter(
            f"--since {since} is after --until {until}: give since <= until", param_hint="'--since'"
        )
    check_seqs(store, run_id, **{"--since": since, "--until": until})
    rows = inspect_run.list_events(store, run_id, types or None, since, until, bodies=as_json)
    if as_json:
        print_json(rows)
    else:
        _table(rows, ["seq", "type", "caused_by", "summary"])


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.option("--at", "seq", type=SEQ, help="Fold events up to and including this seq (default: latest).")
@json_option
@with_store(pool=False)
def state(run_id: str, seq: int | None, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Show the state of a run at a seq (JSON)."""
    check_seqs(store, run_id, **{"--at": seq})
    print_json(inspect_run.state_at(store, run_id, seq))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_id", type=RUN_ID)
@click.argument("a", type=SEQ)
@click.argument("b", type=SEQ)
@json_option
@with_store(pool=False)
def diff(run_id: str, a: int, b: int, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Show the RFC 6902 difference between the states at seqs A and B."""
    check_seqs(store, run_id, A=a, B=b)
    ops = inspect_run.diff(store, run_id, a, b)
    if as_json:
        print_json(ops)
        return
    if not ops:
        err_console.print("no difference")
    from agentcore.cli.render import one_line

    for op in ops:
        value = "" if "value" not in op else " " + one_line(repr(op["value"]))
        console.print(f"{op['op']:<8} {op['path']}{value}", markup=False)


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.argument("fact_key")
@json_option
@with_store(pool=False)
def why(run_id: str, fact_key: str, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Explain a fact: fact <- patch <- processor call <- tool result and artifact <- decision."""
    from agentcore.inspection.provenance import why as explain

    data = explain(store, run_id, fact_key)
    if as_json:
        print_json(data)
        return
    f = data["fact"]
    console.print(f"[bold]{safe(f['key'])}[/bold] = {safe(f['value'])}")
    for link in data["chain"]:
        art = f"  artifact {safe(link['artifact'])}" if link.get("artifact") else ""
        console.print(f"  <- seq {link['seq']:>4} {safe(link['type'])}: {safe(link.get('summary', ''))}{art}")
    if len(data["history"]) > 1:
        console.print(f"set at seqs {', '.join(map(str, data['history']))} (the latest value wins)")


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # pragma: no cover - a text-only stdout
        sys.stdout.write(data.decode("utf-8", errors="replace"))
    else:
        out.write(data)
        out.flush()


@click.command()
@click.argument("artifact_id")
@click.option("--limit", default=4096, show_default=True, type=click.IntRange(min=1), help="Bytes to preview.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the whole artifact to this file (- for stdout).",
)  # fmt: skip
@json_option
@with_store(pool=False)
def artifact(artifact_id: str, limit: int, output: str | None, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Show (or save) a stored artifact.

    On a terminal a preview is shown (`-o -`: the whole text, control sequences inert); when stdout
    is a file or a pipe (`agentcore artifact ID > f`, `-o -`) the exact bytes are written.
    """
    check_output(output, db)
    check_stdout(output, as_json)
    if output == "-" and support.stdout_is_terminal():  # a terminal gets the text, with control sequences inert
        console.print(store.artifacts.read(artifact_id).decode("utf-8", errors="replace"), markup=False, end="")
        return
    if output == "-" or (output is None and not as_json and not support.stdout_is_terminal()):
        _write_stdout(store.artifacts.read(artifact_id))
        return
    if output:
        with click.open_file(output, "wb") as f:
            f.write(store.artifacts.read(artifact_id))
    data = inspect_run.artifact_preview(store, artifact_id, limit)
    if output:
        data["output"] = output
    if as_json:
        print_json(data)
        return
    err_console.print(f"[dim]{safe(data['id'])}  {safe(data['media_type'])}  {data['size']} bytes[/dim]")
    if output:
        err_console.print(f"wrote {safe(output)}")
        return
    console.print(data["preview"], markup=False)
    if data["truncated"]:
        err_console.print(f"[dim]… {data['size'] - limit} more bytes (use --limit or -o FILE)[/dim]")


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.option("--at", "seq", type=SEQ, required=True, help="Keep the parent's events up to this seq.")
@json_option
@with_store(pool=False)
def fork(run_id: str, seq: int, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Fork a run at a seq (copy-free); continue the fork with `agentcore resume`."""
    check_seqs(store, run_id, **{"--at": seq})
    try:
        new_id = store.fork(run_id, seq)
    except InvalidForkPoint as e:  # 0, or inside one recorded step: a bad value of --at (exit 2)
        raise click.BadParameter(inert(str(e)), param_hint="'--at'") from None
    if as_json:
        print_json({"run_id": new_id, "parent_run_id": run_id, "forked_at_seq": seq})
    else:
        err_console.print(f"forked {safe(run_id)} at seq {seq}: new run")
        console.print(new_id, markup=False)


@click.command()
@click.argument("run_id", type=RUN_ID)
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(exists=True, dir_okay=False),
    help='Price every call again from this JSON file ({"model": {"input_mtok": $, "output_mtok": $}}), '
    "then genai-prices; by default the cost recorded with each call is shown.",
)
@json_option
@with_store(pool=False)
def usage(run_id: str, prices_file: str | None, store: SQLiteEventStore, db: str, as_json: bool) -> None:
    """Tokens and dollars used by a run, per role and per step ("unknown" when a model has no price)."""
    try:
        price = _read_prices(prices_file) if prices_file else None
    except ConfigError as e:  # a bad value: exit 2, as a bad --db is
        raise support.BadTarget(inert(str(e))) from None
    data = inspect_run.usage(store, run_id, price=price)
    if as_json:
        print_json(data)
        return

    def cost(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "cost_usd": "unknown" if row["cost_usd"] is None else f"${row['cost_usd']:.6f}"}

    rows = [{"role": k, **v} for k, v in data["by_role"].items()] + [{"role": "total", **data["total"]}]
    columns = ["role", "calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]
    _table([cost(r) for r in rows], columns, title="by role")
    steps = [{"step": k, **v} for k, v in data["by_step"].items()]
    _table([cost(r) for r in steps], ["step", "calls", "total_tokens", "cost_usd"], title="by step")


MAX_PRICES_BYTES = 1 << 20
"""The largest price file read (1 MiB: a price per model for thousands of models)."""


def _read_small_file(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refused unread when it is a FIFO, a device
    (``/dev/zero``) or larger than ``limit`` (opened without blocking, then checked by descriptor)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"cannot read prices from {path}: it is not a regular file (a pipe or a device)")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"cannot read prices from {path}: it is larger than {limit} bytes; pass a JSON price file")
    return data


def _read_prices(path: str) -> Callable[[LLMCalled], float | None]:
    """A per-call pricer from a JSON price file (user prices first, then genai-prices).

    Raises:
        ConfigError: the file cannot be read, is not a regular file, is over ``MAX_PRICES_BYTES``, is
            not UTF-8 JSON, or its prices are not valid.
    """
    from agentcore.models.prices import pricer

    try:
        table = json.loads(_read_small_file(path, MAX_PRICES_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ConfigError(f"cannot read prices from {path}: {e}") from None
    price = pricer(table)
    return lambda e: price(e.model, e.usage, e.at)


COMMANDS = (runs, events, state, diff, why, artifact, fork, usage)
