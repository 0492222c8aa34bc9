"""The processes the crash torture and race tests start: real runs on a real SQLite file.

Two ways to use it:

- ``python tests/support/crash_worker.py once MODE DB EFFECTS RUN_ID``: do one job in this process.
- ``python tests/support/crash_worker.py serve``: a fork server. It imports agentcore once (about two seconds
  on a small machine), prints ``ready``, then reads one JSON command per line on stdin:
  ``{"cmd": "start", "mode": ..., "db": ..., "run_id": ..., "out": ..., ...}`` forks a child that
  does the job (see ``job``) and answers ``{"pid": N}``; ``{"cmd": "wait", "pid": N}`` reaps that
  child and answers ``{"pid": N, "code": C}`` (``-9`` when it was SIGKILLed); ``{"cmd": "quit"}``.
  Tests kill children with ``os.kill(pid, SIGKILL)``: each one is a real process with its own
  SQLite connection, killed wherever it happens to be. ``ForkServer`` is the tests' client.

A job starts a run (``RUN_ID`` absent from ``DB``) or resumes it, and runs it to the end:

- ``agent``: an ``Agent`` whose controller (a ``FunctionChatModel``) makes ``DECISIONS`` decisions of
  two parallel calls to the ``record`` tool, then replies; its processor turns every result into a
  fact. Both read only their prompt, so a resumed run asks them the same questions.
- ``plan``: a ``PlanRunner`` running ``PLAN`` (tool steps in a DAG, three in parallel) with
  plan-and-revise (``revise=True``): after each step, the processor turns its result into a fact.
  A run that a kill left with no event (before its ``RunStarted``) is started again under its id.

The ``record`` tool appends ``<idempotency key> <item>`` to ``EFFECTS`` (one ``write``), then
works a little: a kill during that time leaves a side effect whose result was never recorded.
When the job ends, ``OUT`` gets a JSON line: the run's status and the job's duration in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.core.values import TokenUsage
from agentcore.errors import ConcurrencyError, RunNotFound
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, calls, respond_json, say
from agentcore.runtime.agent import Agent, RunResult
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool

TASK = "record every item, then say how many facts you know"
DECISIONS = 6
"""Controller decisions of the agent run before its reply (two tool calls each)."""
WORK_S = {"agent": 0.004, "plan": 0.015}
"""How long the ``record`` tool works after its side effect, per mode."""
USAGE = TokenUsage(prompt_tokens=10, completion_tokens=2, total_tokens=12)

PLAN = Plan(
    steps=(
        Step(id="fetch", tool="record", arguments={"item": "fetch"}),
        Step(id="parse_a", tool="record", arguments={"item": "parse_a"}, after=("fetch",)),
        Step(id="parse_b", tool="record", arguments={"item": "parse_b"}, after=("fetch",)),
        Step(id="parse_c", tool="record", arguments={"item": "parse_c"}, after=("fetch",)),
        Step(id="index", tool="record", arguments={"item": "index"}, after=("parse_a", "parse_b")),
        Step(id="stats", tool="record", arguments={"item": "stats"}, after=("parse_c",)),
        Step(id="check", tool="record", arguments={"item": "check"}, after=("index", "stats")),
        Step(id="report_x", tool="record", arguments={"item": "report_x"}, after=("check",)),
        Step(id="report_y", tool="record", arguments={"item": "report_y"}, after=("check",)),
        Step(id="publish", tool="record", arguments={"item": "publish"}, after=("report_x", "report_y")),
    ),
    retry=RetryPolicy(max_attempts=100, base_delay=0.001, max_delay=0.01),
    max_parallel=3,
)
"""Kills can interrupt a step many times; each interruption uses up one of ``max_attempts``."""

_DECISIONS_SO_FAR = re.compile(r"Decisions so far: (\d+)\.")
_FACT_COUNT = re.compile(r"# Known facts \((\d+), newest last\)")
_CALL_ID = re.compile(r"^call id: (\S+)$", re.MULTILINE)
_PAYLOAD = re.compile(r"^payload:\n(.*)$", re.MULTILINE)


def _prompt(request: ChatRequest) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


def controller_answer(request: ChatRequest) -> ChatResponse:
    """Two ``record`` calls per decision until ``DECISIONS`` are made, then a reply naming the fact count."""
    prompt = _prompt(request)
    found = _DECISIONS_SO_FAR.search(prompt)
    assert found, "the controller prompt no longer says how many decisions were made"
    made = int(found.group(1))
    if made < DECISIONS:
        response = calls(("record", {"item": f"d{made}-a"}), ("record", {"item": f"d{made}-b"}))
        return response.model_copy(update={"usage": USAGE})
    facts = _FACT_COUNT.search(prompt)
    return say(f"done: {facts.group(1) if facts else '?'} facts known", usage=USAGE)


def processor_answer(request: ChatRequest) -> ChatResponse:
    """A fact keyed by the call id whose value is the first line of the result's payload."""
    prompt = _prompt(request)
    call_id, payload = _CALL_ID.search(prompt), _PAYLOAD.search(prompt)
    assert call_id and payload, "the processor prompt no longer shows the call id and payload"
    fact = {"key": call_id.group(1), "value": payload.group(1), "source": call_id.group(1)}
    return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]}).model_copy(update={"usage": USAGE})


def record_tool(effects: Path, work_s: float) -> Tool:
    """The side-effecting tool: one appended line per invocation, then a little work."""

    @tool(timeout=None)
    async def record(item: str, idempotency_key: str | None = None) -> str:
        """Record one item in the side-effect log.

        Args:
            item: What to record.
        """
        fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{idempotency_key} {item}\n".encode())  # one write: a kill leaves the line whole or absent
        finally:
            os.close(fd)
        await asyncio.sleep(work_s)
        return f"recorded {item}"

    return record


def exists(store: SQLiteEventStore, run_id: str) -> bool:
    """Whether the store has a run ``run_id``."""
    try:
        store.run(run_id)
    except RunNotFound:
        return False
    return True


async def run_agent(store: SQLiteEventStore, effects: Path, run_id: str) -> RunResult:
    """Start or resume the agent run ``run_id``."""
    agent = Agent(
        FunctionChatModel(controller_answer, name="torture-controller"),
        FunctionChatModel(processor_answer, name="torture-processor"),
        tools=[record_tool(effects, WORK_S["agent"])],
        store=store,
        max_steps=DECISIONS + 2,
    )
    if exists(store, run_id):
        return await agent.resume(run_id)
    return await agent.run(TASK, run_id=run_id)


async def run_plan(store: SQLiteEventStore, effects: Path, run_id: str) -> RunResult:
    """Resume the plan run ``run_id``; start it when it does not exist or never started."""
    runner = PlanRunner(
        store,
        tools=[record_tool(effects, WORK_S["plan"])],
        processor_model=FunctionChatModel(processor_answer, name="torture-processor"),
        revise=True,
        seed=7,
    )
    try:
        return await runner.resume(run_id)
    except RunNotFound:  # also RunNotStarted: a kill between creating the run and its RunStarted
        return await runner.run(TASK, PLAN, run_id=run_id)


async def run_agent_retrying(store: SQLiteEventStore, effects: Path, run_id: str) -> tuple[RunResult, int]:
    """``run_agent`` until the run is finished, starting again after each ``ConcurrencyError``.

    That is what a process does when another process works on the same run: re-read the log and go
    on from there. Returns the result and how many conflicts it met.
    """
    conflicts = 0
    while True:
        try:
            return await run_agent(store, effects, run_id), conflicts
        except ConcurrencyError:
            conflicts += 1


def append_steps(store: SQLiteEventStore, run_id: str, steps: int, pause_s: float = 0.0) -> int:
    """Append a ``RunStarted`` and ``steps`` five-event agent steps (one batch each); returns the last seq.

    ``pause_s`` between batches leaves readers room to look at the run while it grows.
    """
    from tests.storage.test_store import log_of  # the store contract's realistic log

    events = log_of(run_id, steps)
    store.create_run("appended by a writer", run_id=run_id)
    last = store.append(run_id, events[:1], 0)
    for first in range(1, len(events), 5):
        time.sleep(pause_s)
        last = store.append(run_id, events[first : first + 5], last)
    return last


def job(command: dict[str, Any]) -> int:
    """Do one job; write its outcome to ``command["out"]``; return the exit code.

    Modes: ``agent`` / ``plan`` (start or resume a run), ``agent-retry`` (``run_agent_retrying``),
    ``append`` (``append_steps``, with ``steps`` and ``pause_s`` from the command). With ``go`` set, the job waits
    for that file to exist first (a start line for several processes).
    """
    mode, run_id, effects = command["mode"], command["run_id"], Path(command.get("effects") or os.devnull)
    go = Path(command["go"]) if command.get("go") else None
    while go is not None and not go.exists():
        time.sleep(0.001)
    started = time.perf_counter()
    outcome: dict[str, Any] = {}
    try:
        store = SQLiteEventStore(command["db"], snapshot_every=command.get("snapshot_every", 100))
        try:
            if mode == "append":
                outcome["last_seq"] = append_steps(store, run_id, command["steps"], command.get("pause_s", 0.0))
                result = None
            elif mode == "agent-retry":
                result, outcome["conflicts"] = asyncio.run(run_agent_retrying(store, effects, run_id))
            else:
                fn = run_agent if mode == "agent" else run_plan
                result = asyncio.run(fn(store, effects, run_id))
        finally:
            store.close()
        if result is not None:
            outcome.update(status=result.status, reason=result.reason)
        code = 0
    except BaseException:
        outcome = {"error": traceback.format_exc()}
        code = 1
    outcome["seconds"] = time.perf_counter() - started
    Path(command["out"]).write_text(json.dumps(outcome) + "\n")
    return code


def serve() -> None:
    """The fork server loop (see the module docstring)."""
    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "start":
            pid = os.fork()
            if pid == 0:  # the child: do the job, never return into this loop
                code = 1
                try:
                    code = job(command)
                finally:
                    os._exit(code)
            print(json.dumps({"pid": pid}), flush=True)
        elif command["cmd"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"pid": command["pid"], "code": code}), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {command['cmd']!r}"}), flush=True)


class ForkServer:
    """The test side: ``crash_worker.py serve`` in a subprocess, which starts jobs and reaps them.

    Args:
        stderr: File that receives the server's (and its children's) stderr.
    """

    def __init__(self, stderr: Path) -> None:
        self.stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        ready = self._read(120)
        if ready != "ready":
            raise RuntimeError(f"the fork server said {ready!r} instead of 'ready'")

    def _read(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the fork server did not answer; its stderr: {self.stderr_path.read_text()[-3000:]}")
        return line.strip()

    def command(self, **cmd: Any) -> dict[str, Any]:
        """Send one command, return the answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read(120))

    def start(self, mode: str, db: Path, run_id: str, out: Path, **options: Any) -> int:
        """Fork a child doing one job (see ``job``); returns its pid."""
        return self.command(cmd="start", mode=mode, db=str(db), run_id=run_id, out=str(out), **options)["pid"]

    def wait(self, pid: int) -> int:
        """Reap a child: its exit code, or minus the signal that killed it."""
        return self.command(cmd="wait", pid=pid)["code"]

    def close(self) -> None:
        """Stop the server (it exits when told; killed through its own handle if it does not)."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=30)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["once"] and len(sys.argv) == 6:
        mode, db, effects, run_id = sys.argv[2:6]
        sys.exit(job({"mode": mode, "db": db, "effects": effects, "run_id": run_id, "out": "/dev/stdout"}))
    else:
        sys.exit("usage: crash_worker.py serve | crash_worker.py once MODE DB EFFECTS RUN_ID")
