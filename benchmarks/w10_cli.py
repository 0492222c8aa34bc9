"""W10 — CLI start-up (see WORKLOADS.md): wall time of short ``agentcore`` commands on a small database.

A database of 10 small runs (20 events each: a task, model calls, tool calls, facts, a reply) is
written once; then each command runs ``--repeat``-many times as a fresh process (default 10) and the
median wall time is reported, beside two floors measured in the same command: ``python -c pass``
(the interpreter alone) and ``sqlite-utils tables DB`` (another click CLI opening the same file).
The commands are the installed console scripts next to the running interpreter.

PostgreSQL (``AGENTCORE_W10_PG=1``): the same 10 runs in a database on a throwaway server the
harness starts and stops (``tests/support/postgres.py``, SCRAM authentication over TCP, as a real
server asks), and ``runs`` / ``events`` / ``state`` with ``--db postgresql://...``: keys
``pg_runs_ms``, ``pg_events_ms``, ``pg_state_ms`` (and ``*_cpu_ms``). With
``AGENTCORE_W10_BASELINE=TREE`` (another checkout, e.g. a ``git worktree`` of an older commit) each
of these also runs from that tree, interleaved with this one, both through the same launcher
(``python -c`` with ``PYTHONPATH`` set to the tree): ``pg_base_*`` (that tree) beside ``pg_this_*``.

Run: ``python benchmarks/run.py W10 [--repeat 10]``.
"""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.core.events import (
    Decided,
    Decision,
    LLMCalled,
    RunFinished,
    RunStarted,
    StatePatched,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.storage.sqlite.store import SQLiteEventStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
RUNS = 10


def small_run(store: Any, i: int) -> str:
    """One run of 20 events in ``store`` (SQLite or PostgreSQL): RunStarted, 3 agent steps of 6 events, RunFinished."""
    run = store.create_run(f"question {i}", run_id=f"run-{i:02d}", created=T0 + timedelta(minutes=i))
    events: list[Any] = [RunStarted(run_id=run, seq=1, at=T0, task=f"question {i}")]
    for step in range(3):
        seq = len(events) + 1
        call = ToolCall(id=f"c{step}", name="search_code", arguments={"query": f"needle {step}"})
        usage = TokenUsage(prompt_tokens=900, completion_tokens=40, total_tokens=940)
        fact = FactInput(key=f"f{step}", value=f"needle {step} is in a.py:{step}", source=call.id)
        events += [
            LLMCalled(run_id=run, seq=seq, at=T0, role="controller", model="m", request_digest="d", usage=usage),
            Decided(run_id=run, seq=seq + 1, at=T0, decision=Decision(kind="tool_calls", tool_calls=(call,))),
            ToolStarted(run_id=run, seq=seq + 2, at=T0, call=call, idempotency_key=f"{run}/main/{call.id}"),
            ToolFinished(run_id=run, seq=seq + 3, at=T0, call_id=call.id, name=call.name, ok=True, payload="1 match"),
            LLMCalled(run_id=run, seq=seq + 4, at=T0, role="processor", model="m", request_digest="e", usage=usage),
            StatePatched(run_id=run, seq=seq + 5, at=T0, ops=(AppendKnownFacts(facts=(fact,)),)),
        ]
    events.append(RunFinished(run_id=run, seq=len(events) + 1, at=T0 + timedelta(seconds=3), status="succeeded"))
    store.append(run, events, 0)
    return run


def wall_ms(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the child) of ``argv`` run as a fresh
    process ``repeat`` times (it must succeed), in ms. On a busy machine the CPU time is the steadier."""
    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return round(statistics.median(times) * 1000, 1), round(statistics.median(cpu) * 1000, 1)


LAUNCH = "import sys\nfrom agentcore.cli import main\nsys.argv = ['agentcore', *sys.argv[1:]]\nmain()"
"""What the ``agentcore`` console script does, for a tree given by ``PYTHONPATH`` (the baseline)."""


def interleaved_ms(commands: dict[str, tuple[list[str], dict[str, str] | None]], repeat: int) -> dict[str, Any]:
    """``wall_ms`` of each command (``argv``, environment or ``None``), taking turns: one run of each per round."""
    samples: dict[str, list[tuple[float, float]]] = {key: [] for key in commands}
    for _ in range(repeat):
        for key, (argv, env) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd="/")
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples[key].append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
    out: dict[str, Any] = {}
    for key, got in samples.items():
        out[key] = round(statistics.median(w for w, _ in got) * 1000, 1)
        out[key.replace("_ms", "_cpu_ms")] = round(statistics.median(c for _, c in got) * 1000, 1)
    return out


def on_postgres(agentcore: str, repeat: int) -> dict[str, Any]:
    """The ``pg_*`` keys (module docstring): a throwaway server, 10 runs, each command ``repeat`` times."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from agentcore.storage.postgres.store import PostgresEventStore
    from tests.support.postgres import LocalPostgres

    baseline = os.environ.get("AGENTCORE_W10_BASELINE")
    with LocalPostgres() as server:
        url = server.create_database("w10")
        with PostgresEventStore(url) as store:
            last = [small_run(store, i) for i in range(RUNS)][-1]
        args = {"runs": ["runs"], "events": ["events", last], "state": ["state", last]}
        commands = {f"pg_{name}_ms": ([agentcore, *a, "--db", url], None) for name, a in args.items()}
        if baseline:
            this = str(Path(agentcore_package()).parent.parent)
            for name, a in args.items():
                for label, tree in (("base", baseline), ("this", this)):
                    env = {**os.environ, "PYTHONPATH": tree}
                    commands[f"pg_{label}_{name}_ms"] = ([sys.executable, "-c", LAUNCH, *a, "--db", url], env)
        for argv, env in commands.values():  # first-use costs out of the way
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd="/")
        out = interleaved_ms(commands, repeat)
    if baseline:
        out["pg_baseline_tree"] = baseline
    return out


def agentcore_package() -> str:
    """The ``__init__.py`` of the agentcore package the console script imports."""
    import agentcore

    return str(agentcore.__file__)


def run(n: int | None, repeat: int) -> dict[str, Any]:
    repeat = max(repeat, 10) if n is None else n  # --n overrides the 10 runs per command
    scripts = Path(sys.executable).parent
    agentcore, sqlite_utils = str(scripts / "agentcore"), str(scripts / "sqlite-utils")
    with tempfile.TemporaryDirectory(prefix="agentcore-w10-") as tmp:
        db = str(Path(tmp) / "w10.db")
        with SQLiteEventStore(db) as store:
            runs = [small_run(store, i) for i in range(RUNS)]
        env_run = runs[-1]
        commands = {
            "python_floor_ms": [sys.executable, "-c", "pass"],
            "sqlite_utils_ms": [sqlite_utils, "tables", db],
            "version_ms": [agentcore, "--version"],
            "runs_ms": [agentcore, "runs", "--db", db],
            "events_ms": [agentcore, "events", env_run, "--db", db],
            "state_ms": [agentcore, "state", env_run, "--db", db],
        }
        if not os.environ.get("AGENTCORE_W10_NO_COMPILE"):
            # agentcore's bytecode, as a wheel install has it: the warm-up below cannot write it
            # when PYTHONDONTWRITEBYTECODE is set (then every command compiled ~40 modules)
            compileall.compile_dir(str(Path(agentcore_package()).parent), quiet=1)
        for argv in commands.values():  # first-use costs (bytecode, page cache) out of the way
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out: dict[str, Any] = {"workload": "W10", "runs_in_db": RUNS, "repeat": repeat, "cores": os.cpu_count()}
        for key, argv in commands.items():
            out[key], out[key.replace("_ms", "_cpu_ms")] = wall_ms(argv, repeat)
        if os.environ.get("AGENTCORE_W10_PG"):
            out.update(on_postgres(agentcore, repeat))
    for key in ("version_ms", "runs_ms", "events_ms", "state_ms"):
        out[f"{key[:-3]}_x_python_floor"] = round(out[key] / out["python_floor_ms"], 2)
        out[f"{key[:-3]}_x_sqlite_utils"] = round(out[key] / out["sqlite_utils_ms"], 2)
    out["load_average"] = os.getloadavg()[0]
    out["bytecode_compiled"] = not os.environ.get("AGENTCORE_W10_NO_COMPILE")
    return out
