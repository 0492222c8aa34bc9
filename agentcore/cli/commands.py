"""The ``agentcore`` command: ask a code-search question, then inspect, fork, resume, export and replay runs.

Every command that reads runs takes ``--db`` (a file path or a ``postgresql://`` URL; also a group
option; default ``$AGENTCORE_DB``, else ``./agentcore.db``), every command takes ``--json`` for machine-readable output, and ``last`` stands
for the newest run wherever a run id is expected. Exit codes, streams and error shapes are the
conventions of ``agentcore.cli.support``.
"""

from __future__ import annotations

import functools
import importlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from agentcore.cli.support import (
    DB_ENV,
    DEFAULT_DB,
    EXIT_FAILED,
    EXIT_WAITING,
    RUN_ID,
    UTF8_TEXT,
    AgentcoreGroup,
    console,
    err_console,
    json_option,
    print_json,
    safe,
    shown,
    with_store,
)
from agentcore.storage.targets import describe

if TYPE_CHECKING:  # the run loop, the models and the tools load only in the commands that run agents
    from agentcore.runtime.agent import Agent, RunResult
    from agentcore.storage.sqlite.store import SQLiteEventStore

__all__ = ("LAZY_COMMANDS", "cli", "console", "err_console", "main")

LAZY_COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ("runs", "events", "state", "diff", "why", "artifact", "fork", "usage"), "agentcore.cli.inspecting"
    ),
    **dict.fromkeys(("export", "import", "replay", "view"), "agentcore.cli.traces"),
    **dict.fromkeys(("submit", "worker", "wait", "copy"), "agentcore.cli.work"),
    "mcp-serve": "agentcore.cli.serving",
}
"""Command name -> the module whose ``COMMANDS`` defines it: imported only when the command is
looked up (``agentcore runs`` loads neither the trace, the worker nor the MCP commands)."""


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands: those named in ``LAZY_COMMANDS`` are imported on first lookup."""

    def __init__(self, lazy: dict[str, str]) -> None:
        self._lazy = dict(lazy)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in self._lazy:
            for command in importlib.import_module(self._lazy[name]).COMMANDS:
                self._loaded.setdefault(command.name or "", command)
        return self._loaded[name]  # KeyError: no such command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._lazy.pop(name, None)
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._loaded, *self._lazy]))

    def __len__(self) -> int:
        return len(set(self._loaded) | set(self._lazy))


@click.group(
    cls=AgentcoreGroup, commands=LazyCommands(LAZY_COMMANDS), context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--db",
    "db",
    default=None,
    envvar=DB_ENV,
    help=f"Where runs are stored, for every command: an SQLite file path or a postgresql://user:password@host:"
    f"port/dbname URL (default: ${DB_ENV}, else {DEFAULT_DB}).",
)
@click.version_option(package_name="agentcore")
def cli(db: str | None) -> None:
    """agentcore: LLM agents whose every state change is an event you can replay and inspect.

    \b
    Exit codes: 0 success; 1 a run failed, a replay diverged, or an error (unknown run, missing
    database); 2 a usage error (bad option or seq range); 3 the run waits for your answer
    (`agentcore answer RUN_ID "..."` continues it). Answers and data go to stdout; progress and
    hints to stderr.
    """


def _cmd(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def _db_args(db: str) -> list[str]:
    return [] if db == (os.environ.get(DB_ENV) or DEFAULT_DB) else ["--db", describe(db)]  # never a password


def _print_result(result: RunResult, db: str, as_json: bool) -> None:
    """The answer (stdout), the hints (stderr), and the exit code of the run's status."""
    state = result.state
    cited = [f.model_dump(mode="json") for f in state.known_facts.values()]
    rid = result.run_id
    answer_cmd = _cmd("agentcore", "answer", rid, "YOUR ANSWER", *_db_args(db))
    if as_json:
        data = {
            "run_id": rid, "status": result.status, "reply": result.reply, "reason": result.reason,
            "facts": cited, "events": state.last_seq, "tokens": state.tokens, "db": describe(db),
        }  # fmt: skip
        if result.status == "waiting_for_user":
            data.update(question=result.reason, answer_command=answer_cmd)
        print_json(data)
    else:
        _print_text(result, cited, db, answer_cmd)
    if result.status == "waiting_for_user":
        sys.exit(EXIT_WAITING)
    if result.status != "succeeded":
        sys.exit(EXIT_FAILED)


REPLY_PREVIEW_CHARS = 20_000
"""``ask``/``resume``/``answer`` print at most this many characters of a reply (the rest stays in the store)."""


def _print_text(result: RunResult, cited: list[dict], db: str, answer_cmd: str) -> None:
    state, rid = result.state, result.run_id
    if result.status == "succeeded":
        err_console.print("\n[bold]Answer[/bold]")
        reply = result.reply or ""
        console.print(reply[:REPLY_PREVIEW_CHARS], markup=False)
        if len(reply) > REPLY_PREVIEW_CHARS:
            whole = _cmd("agentcore", "state", rid, *_db_args(db))
            err_console.print(
                f"[the reply has {len(reply)} characters; the first {REPLY_PREVIEW_CHARS} are shown. All of it is "
                f'stored: {whole} (field "reply"), or run with --json]',
                markup=False,
            )
    elif result.status == "waiting_for_user":
        err_console.print("\n[bold yellow]The agent asks:[/bold yellow]")
        console.print(result.reason or "", markup=False)
        err_console.print(f"run {safe(rid)} is waiting for your answer (exit code {EXIT_WAITING}); answer it with:")
        err_console.print(f"  {answer_cmd}", markup=False)
    else:
        err_console.print(f"\n[bold red]Run {safe(result.status)}[/bold red]: {safe(result.reason or '')}")
    if cited:
        console.print("\n[bold]Cited facts[/bold]")
        for f in cited:
            where = f"source {f['source']}" + (f", artifact {f['artifact_id']}" if f.get("artifact_id") else "")
            console.print(f"- [bold]{safe(f['key'])}[/bold]: {safe(f['value'])} [dim]({safe(where)})[/dim]")
    db_args = _db_args(db)
    err_console.print(f"\nrun {safe(rid)}: {state.last_seq} events, {state.tokens} tokens, stored in {shown(db)}")
    err_console.print("inspect it with:")
    fact = next(iter(state.known_facts), "FACT_KEY")
    for cmd in (
        _cmd("agentcore", "events", rid, *db_args),
        _cmd("agentcore", "state", rid, *db_args),
        _cmd("agentcore", "why", rid, fact, *db_args),
        _cmd("agentcore", "view", rid, "-o", "run.html", *db_args),
    ):
        err_console.print(f"  {cmd}", markup=False)


def _progress(agent: Agent, show: bool) -> None:
    from agentcore.cli.render import Progress

    if show:
        agent.on_event = Progress(err_console)


def _interactive(as_json: bool) -> bool:
    return not as_json and sys.stdin.isatty() and sys.stdout.isatty()


def _answer_in_place(agent: Agent, result: RunResult) -> RunResult:
    """On a terminal, ask the user the run's question and continue until it stops asking (empty: stop)."""
    while result.status == "waiting_for_user":
        err_console.print(f"\n[bold yellow]The agent asks:[/bold yellow] {safe(result.reason or '')}")
        text = click.prompt("your answer (empty to stop)", default="", show_default=False, err=True)
        if not text.strip():
            break
        result = agent.answer_sync(result.run_id, text)
    return result


# ------------------------------------------------------------------------------------------------
# ask / resume / answer

model_option = click.option(
    "--model", help="Controller model (needs OPENAI_API_KEY or OPENAI_BASE_URL); default $AGENTCORE_MODEL."
)
max_steps_option = click.option("--max-steps", type=click.IntRange(min=1), help="Most controller decisions.")
repo_option = click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False),
    help="Repository the tools may read (default: the recorded one; required for a run imported from a trace).",
)
quiet_option = click.option("--quiet", is_flag=True, help="No live progress (on stderr).")


@cli.command()
@click.argument("question", type=UTF8_TEXT)
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Repository to search.",
)
@model_option
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
@max_steps_option
@quiet_option
@click.option(
    "--progress", "index_progress", is_flag=True,
    help="Show the code index build's progress on stderr even when it is not a terminal (never with --json).",
)  # fmt: skip
@click.option("--no-input", is_flag=True, help="Never prompt; a question from the agent exits with code 3.")
@json_option
@with_store(must_exist=False)
def ask(
    question: str, repo: str, store: SQLiteEventStore, db: str, model: str | None, processor_model: str | None,
    offline: bool, tool_mode: str, schema_mode: str, max_steps: int | None, quiet: bool, index_progress: bool,
    no_input: bool, as_json: bool,
) -> None:  # fmt: skip
    """Answer a question about the code in --repo, citing where each fact came from.

    The answer goes to stdout, progress to stderr (the first index build of a large repository shows
    how far it is on a terminal, or with --progress). A run that asks the user a question exits with
    code 3 and prints the `agentcore answer` command to continue (on a terminal it asks in place).
    """
    from agentcore.cli.agents import IndexProgress, code_agent, make_models, offline_wanted
    from agentcore.models.offline import OfflineCodeModel

    if not offline_wanted(offline) and not (
        model or os.environ.get("AGENTCORE_MODEL") or os.environ.get("OPENAI_MODEL")
    ):
        raise click.UsageError(
            "a model server is configured (OPENAI_API_KEY/OPENAI_BASE_URL) but no model name: pass --model NAME "
            "(or set AGENTCORE_MODEL), or use --offline"
        )
    controller, processor = make_models(model, processor_model, offline, tool_mode=tool_mode, schema_mode=schema_mode)
    show = not (quiet or as_json)
    if show:
        if isinstance(controller, OfflineCodeModel):
            err_console.print(
                "[bold]offline model[/bold]: a built-in, rule-based controller and processor for code search "
                "(no LLM, no network). Set OPENAI_API_KEY or OPENAI_BASE_URL to use a real model.",
            )
        else:
            err_console.print(f"model: {safe(controller.name)} (processor: {safe(processor.name)})")
    terminal = sys.stderr.isatty()
    indexing = IndexProgress(sys.stderr, terminal=terminal) if show and (terminal or index_progress) else None
    agent = code_agent(repo, store, controller, processor, progress=indexing, max_steps=max_steps or 12)
    _progress(agent, show)
    result = agent.run_sync(question)
    if not no_input and _interactive(as_json):
        result = _answer_in_place(agent, result)
    _print_result(result, db, as_json)


def _continued(store: SQLiteEventStore, run_id: str, max_steps: int | None) -> tuple[str, str | None]:
    """A run stopped by its step budget, given a bigger ``max_steps``, continues as a fork before its end."""
    state = store.state_at(run_id)
    stopped = state.status == "failed" and (state.reason or "").startswith("budget: max_steps")
    if not stopped or max_steps is None or max_steps <= state.decisions:
        return run_id, None
    fork_id = store.fork(run_id, state.last_seq - 1)
    return (
        fork_id,
        f"run {run_id} stopped at its step budget; continuing as fork {fork_id} with --max-steps {max_steps}",
    )


@dataclass(frozen=True, kw_only=True)
class _Continuation:
    """What ``resume`` and ``answer`` share: the store, how the run's agent is made, how its result is shown."""

    store: SQLiteEventStore
    db: str
    offline: bool
    model: str | None
    max_steps: int | None
    repo: str | None
    quiet: bool
    as_json: bool

    def agent(self, run_id: str) -> Agent:
        """The agent that continues ``run_id`` (its recorded set-up, these options), with live progress."""
        from agentcore.cli.agents import agent_for_run

        agent = agent_for_run(
            self.store, run_id, self.offline, model=self.model, max_steps=self.max_steps, repo=self.repo
        )
        _progress(agent, not (self.quiet or self.as_json))
        return agent

    def show(self, result: RunResult) -> None:
        _print_result(result, self.db, self.as_json)


def _continuation_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The options of a command that continues a run, handed to ``fn`` as one ``how: _Continuation``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any, store: SQLiteEventStore, db: str, offline: bool, model: str | None, max_steps: int | None,
        repo: str | None, quiet: bool, as_json: bool, **kwargs: Any,
    ) -> None:  # fmt: skip
        how = _Continuation(
            store=store, db=db, offline=offline, model=model, max_steps=max_steps, repo=repo, quiet=quiet,
            as_json=as_json,
        )  # fmt: skip
        fn(*args, how=how, **kwargs)

    offline_option = click.option("--offline", is_flag=True, help="Continue with the offline model.")
    decorated: Callable[..., None] = wrapper
    # applied bottom-up, as the decorators would be: --help lists them top-down from --offline
    for option in (with_store(), json_option, quiet_option, repo_option, max_steps_option, model_option):
        decorated = option(decorated)
    return offline_option(decorated)


@cli.command()
@click.argument("run_id", type=RUN_ID)
@_continuation_options
def resume(run_id: str, how: _Continuation) -> None:
    """Continue a run that was interrupted or forked (a finished run is left as it is).

    A run that failed because it used up its --max-steps continues, as a fork of itself, when given
    a bigger --max-steps.
    """
    run_id, note = _continued(how.store, run_id, how.max_steps)
    state = how.store.state_at(run_id)
    if state.finished:
        if how.as_json:
            print_json({"run_id": run_id, "status": state.status, "resumed": False})
        else:
            err_console.print(f"run {safe(run_id)} already {safe(state.status)}; nothing to resume")
            if state.status == "failed" and (state.reason or "").startswith("budget: max_steps"):
                err_console.print(f"it stopped at its step budget: pass --max-steps N (N > {state.decisions})")
        return
    if note and not how.as_json:
        err_console.print(note, markup=False)
    how.show(how.agent(run_id).resume_sync(run_id))


@cli.command()
@click.argument("run_id", type=RUN_ID)
@click.argument("text", type=UTF8_TEXT)
@_continuation_options
def answer(run_id: str, text: str, how: _Continuation) -> None:
    """Answer the question a run is waiting on, and let it continue."""
    how.show(how.agent(run_id).answer_sync(run_id, text))


def main() -> None:
    """Entry point of the ``agentcore`` script."""
    cli(standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover  (python -m agentcore.cli.commands)
    main()
