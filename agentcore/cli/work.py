"""``agentcore submit / worker / wait / copy``: queued runs on a shared PostgreSQL database, and moving runs.

- ``submit QUESTION --repo PATH``: queue an ``ask`` run, print its run id.
- ``worker [--concurrency N] [--exit-when-idle] [--app module:factory]``: claim queued runs and
  drive them (``runtime.worker``); the default app is the built-in code-search agent.
- ``wait RUN... [--timeout S]``: wait until the runs end; exit 0 only if all succeeded.
- ``copy --from X --to Y [RUN...]``: copy runs with their artifacts between any two databases.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import signal
import sys
import time
from typing import Any

import click

from agentcore.cli.support import (
    DB_ENV,
    DEFAULT_DB,
    EXIT_FAILED,
    RUN_ID,
    UTF8_TEXT,
    console,
    db_target,
    err_console,
    json_option,
    open_db,
    print_json,
    resolve_run,
    shown,
    with_store,
)
from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.storage.base import DONE_CHANNEL
from agentcore.storage.targets import is_conninfo, looks_like_url

__all__ = ("COMMANDS", "load_app")

FINISHED = ("succeeded", "failed", "cancelled", "waiting_for_user")


def _no_queue(db: str) -> click.ClickException:
    return click.ClickException(
        f"{shown(db)} has no work queue: queued runs and workers need a PostgreSQL database "
        "(--db postgresql://user:password@host:port/dbname, or AGENTCORE_DB)"
    )


def _queue_target(db: str) -> None:
    """Refuse a file path before it is opened (opening would create an SQLite file for nothing)."""
    if not (looks_like_url(db) or is_conninfo(db)):  # those open_store refuses or opens itself
        raise _no_queue(db)


def _needs_queue(store: Any, db: str) -> None:
    from agentcore.storage.base import WorkQueue

    if not isinstance(store, WorkQueue):
        raise _no_queue(db)


def load_app(spec: str) -> Any:
    """The factory ``module:attribute`` names (``ConfigError`` if it cannot be loaded).

    The module is looked up as ``python -m`` would: the current directory first, so ``--app
    myapp:build`` finds ``./myapp.py`` whether the worker was started as ``agentcore`` or as
    ``python -m agentcore``. Any error while importing it (a missing module, a syntax error, an
    exception at import) is a ``ConfigError`` naming it.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--app must be module:factory (for example mypkg.agents:build), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, SyntaxError, a relative name (TypeError), whatever the module raises
        raise ConfigError(f"--app {spec}: cannot import {module_name!r} ({type(e).__name__}: {e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--app {spec}: {module_name} has no callable {attr!r}")
    return factory


@click.command()
@click.argument("question", type=UTF8_TEXT)
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Repository to search (the workers must see it at the same path).",
)
@click.option("--model", help="Controller model for the worker to use (its own environment supplies keys).")
@click.option("--processor-model", help="Processor model; default: the controller model.")
@click.option("--offline", is_flag=True, help="Have the worker use the built-in offline model.")
@click.option("--max-steps", default=12, show_default=True, type=click.IntRange(min=1), help="Most controller decisions.")
@json_option
@with_store(must_exist=False, check=_queue_target)
def submit(
    question: str, repo: str, store: Any, db: str, model: str | None, processor_model: str | None, offline: bool,
    max_steps: int, as_json: bool,
) -> None:  # fmt: skip
    """Queue an `ask` run for a worker and print its run id."""
    from pathlib import Path

    spec = {
        "kind": "ask", "repo": str(Path(repo).resolve()), "model": model, "processor_model": processor_model,
        "offline": offline, "max_steps": max_steps,
    }  # fmt: skip
    _needs_queue(store, db)
    run_id = store.submit(question, spec=spec)
    if as_json:
        print_json({"run_id": run_id})
    else:
        console.print(run_id, markup=False)


@click.command()
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(min=1), help="Runs this worker drives at once."
)
@click.option("--exit-when-idle", is_flag=True, help="Stop once nothing is left to claim.")
@click.option("--app", "app", help="module:factory building the Agent or PlanRunner of a run (default: code search).")
@click.option("--lease", "lease_s", default=30.0, show_default=True, help="Lease length in seconds (at most a week).")
@click.option("--heartbeat", "heartbeat_s", type=float, help="Seconds between lease renewals (default lease/3).")
@click.option(
    "--poll",
    "poll_s",
    default=5.0,
    show_default=True,
    help="Seconds between looks at the queue and at step outcomes when no notification came (a fallback: notifications wake workers first).",
)
@click.option(
    "--give-up",
    "give_up_s",
    default=60.0,
    show_default=True,
    help="With --exit-when-idle: fail once the database has been unreachable this many seconds in a row.",
)
@json_option
@with_store(must_exist=False, check=_queue_target)
def worker(
    store: Any, db: str, concurrency: int, exit_when_idle: bool, app: str | None, lease_s: float, heartbeat_s: float | None,
    poll_s: float, give_up_s: float, as_json: bool,
) -> None:  # fmt: skip
    """Claim queued runs (and runs whose worker died) and drive them to the end."""
    from agentcore.runtime.worker import Worker

    if app:
        factory = load_app(app)
    else:
        from agentcore.cli.agents import ask_app

        factory = ask_app
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # each failed reconnect; ours say it once
    _needs_queue(store, db)
    w = Worker(
        store, factory, concurrency=concurrency, lease_s=lease_s, heartbeat_s=heartbeat_s, poll_s=poll_s,
        exit_when_idle=exit_when_idle, give_up_s=give_up_s,
    )  # fmt: skip

    def terminate(signum: int, frame: Any) -> None:  # SIGTERM (docker stop, systemd): as Ctrl-C
        w.stop()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        stats = w.serve_sync()  # stopped: the runs in hand go back to the queue (worker_faults.hand_back)
    except KeyboardInterrupt:
        stats = w.stats
    finally:
        signal.signal(signal.SIGTERM, previous)
    data = {
        "owner": w.owner, "finished": len(stats.finished), "lost": len(stats.lost), "released": len(stats.released),
        "failed_by_app": len(stats.failed),
    }  # fmt: skip
    if as_json:
        print_json(data)
    else:
        failed = f", {data['failed_by_app']} failed by the app (see the log above)" if stats.failed else ""
        err_console.print(
            f"worker {w.owner}: {data['finished']} run(s) finished, {data['lost']} lost to other workers{failed}"
        )


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A number of seconds that is not NaN (``inf`` is allowed: no limit)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a number of seconds", ctx=ctx, param=param)
    return value


@click.command()
@click.argument("run_ids", nargs=-1, required=True, type=RUN_ID)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    callback=_finite,
    help="Give up after this many seconds (exit 1).",
)
@json_option
@with_store()  # checks every run id (RunNotFound before any waiting) and resolves `last`
def wait(run_ids: tuple[str, ...], store: Any, db: str, timeout_s: float | None, as_json: bool) -> None:
    """Wait until the runs end; exit 0 only if all of them succeeded."""
    status, ended = _wait_for(store, run_ids, timeout_s)
    ok = ended and all(s == "succeeded" for s in status.values())
    if as_json:
        print_json({"runs": status, "ended": ended, "ok": ok})
    else:
        console.print("\n".join(f"{rid} {s}" for rid, s in status.items()), markup=False)
    if not ended:
        err_console.print(f"timed out after {timeout_s:g} s; runs still going", markup=False)
    if not ok:
        sys.exit(EXIT_FAILED)


def _wait_for(store: Any, run_ids: tuple[str, ...], timeout_s: float | None) -> tuple[dict[str, str], bool]:
    """Statuses once every run ended (or the timeout passed), woken by ``agentcore_done`` notifications.

    Only the runs that have not ended are read again. A database that goes away (a server restart)
    is waited for, said once on stderr, until the deadline: ``StorageUnavailable`` only when it is
    still away then.
    """
    listen = getattr(store, "listen", None)
    listener = None
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    status: dict[str, str] = dict.fromkeys(run_ids, "")
    said_down = False
    try:
        while True:
            left = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                if listener is None and callable(listen):
                    listener = listen(DONE_CHANNEL)
                status.update({rid: store.run(rid).status for rid, s in status.items() if s not in FINISHED})
                ended = all(s in FINISHED for s in status.values())
                if ended or left <= 0:
                    return status, ended
                if listener is not None:
                    listener.wait(left)
                else:
                    time.sleep(min(left, 0.2))
            except StorageUnavailable as e:
                if left <= 0:
                    raise
                if not said_down:
                    err_console.print(f"the database is unreachable; waiting for it to come back ({e})", markup=False)
                    said_down = True
                time.sleep(left)
    finally:
        if listener is not None:
            listener.close()


@click.command(name="copy")
@click.argument("run_ids", nargs=-1, type=RUN_ID)
@click.option("--from", "source", help=f"Database to copy from (path or postgresql:// URL; default: the group's --db, ${DB_ENV}, or {DEFAULT_DB}).")
@click.option("--to", "target", required=True, help="Database to copy to (created when it is a new file).")
@json_option
def copy_cmd(run_ids: tuple[str, ...], source: str | None, target: str, as_json: bool) -> None:
    """Copy runs (all, or the ones named; `last` is the source's newest) with their artifacts from one database to another."""
    from agentcore.storage.copy import copy_runs

    ctx = click.get_current_context()
    source = db_target(ctx, source)
    src = open_db(source)
    ctx.call_on_close(src.close)
    run_ids = tuple(resolve_run(src, rid) for rid in run_ids)  # RunNotFound before the target is created
    dst = open_db(target, must_exist=False)
    ctx.call_on_close(dst.close)
    report = copy_runs(src, dst, run_ids or None)
    data = {
        "copied": report.copied, "skipped": report.skipped, "artifacts": report.artifacts, "events": report.events,
        "still_queued": report.still_queued,
    }  # fmt: skip
    if as_json:
        print_json(data)
    else:
        err_console.print(
            f"copied {len(report.copied)} run(s) ({report.events} events, {report.artifacts} artifacts) from "
            f"{shown(source)} to {shown(target)}; {len(report.skipped)} already there", markup=False,
        )  # fmt: skip
    if report.still_queued:
        err_console.print(
            f"note: {len(report.still_queued)} copied run(s) are still queued or leased in {shown(source)}: "
            f"{', '.join(report.still_queued)}. Queue entries are not copied (the workers of two databases "
            "would drive one run); their logs were copied as far as they go: finish them there and copy again.",
            markup=False,
        )


COMMANDS = (submit, worker, wait, copy_cmd)
