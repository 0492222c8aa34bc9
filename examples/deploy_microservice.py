"""Deploy a (simulated) microservice with a plan: parallel steps, retries, failure policy, kill & resume.

The plan::

    create-vm ──┬── install-deps ──────┬── deploy ── monitor
                └── configure-network ─┘

``install-deps`` and ``configure-network`` run at the same time. ``install-deps`` is flaky: its first
attempt hangs past the step's timeout and is retried after a short backoff. Every step is a tool
with simulated latency (0.1-0.3 s); every transition is an event in a SQLite file.

Try::

    python examples/deploy_microservice.py                      # everything succeeds
    python examples/deploy_microservice.py --fail               # configure-network fails for good:
                                                                # deploy and monitor are skipped
    python examples/deploy_microservice.py --kill-after 2       # SIGKILL itself after 2 steps...
    python examples/deploy_microservice.py --resume RUN_ID      # ...and carry on from the log

Then look inside: ``sqlite-utils query DB "select seq, type from events where run_id = 'RUN_ID'"``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from agentcore.core.events import Event, RunFinished, StepFailed, StepSkipped, StepStarted, StepSucceeded
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import RunNotFound, ToolError
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool

FAIL_NETWORK = False
"""Set by ``--fail``: the network step fails on every attempt."""

_rng = random.Random(7)


async def _latency() -> None:
    await asyncio.sleep(_rng.uniform(0.1, 0.3))


def _attempt(key: str | None) -> int:
    return int(key.rsplit("/", 1)[1]) if key else 1


@tool
async def create_vm(name: str, cpus: int = 2, idempotency_key: str | None = None) -> str:
    """Create a virtual machine.

    Args:
        name: Host name of the VM.
        cpus: Number of virtual CPUs.
    """
    await _latency()
    return f"VM {name} created ({cpus} vCPU, ip 10.0.0.5); request id {idempotency_key}"


@tool
async def install_deps(packages: list[str], idempotency_key: str | None = None) -> str:
    """Install packages on the VM.

    Args:
        packages: Package names.
    """
    if _attempt(idempotency_key) == 1:
        await asyncio.sleep(5)  # the package mirror hangs: longer than the step's timeout
    await _latency()
    return f"installed {', '.join(packages)}"


@tool
async def configure_network(vm: str, ports: list[int]) -> str:
    """Open ports in the VM's firewall and attach it to the load balancer.

    Args:
        vm: Host name of the VM.
        ports: TCP ports to open.
    """
    await _latency()
    if FAIL_NETWORK:
        raise ToolError(f"quota exceeded: no load balancer slot left for {vm}; free one or raise the quota")
    return f"{vm}: opened ports {ports}, attached to lb-1"


@tool
async def deploy(service: str, version: str) -> str:
    """Deploy a service version to the VM.

    Args:
        service: Service name.
        version: Version tag.
    """
    await _latency()
    return f"{service} {version} is live on web-1:8080"


@tool
async def monitor(service: str, checks: int = 3) -> list[str]:
    """Probe the service's health endpoint.

    Args:
        service: Service name.
        checks: How many probes.
    """
    results = []
    for i in range(checks):
        await _latency()
        results.append(f"probe {i + 1}: {service} /health 200 OK")
    return results


TOOLS: list[Tool] = [create_vm, install_deps, configure_network, deploy, monitor]

PLAN = Plan(
    steps=(
        Step(id="create-vm", tool="create_vm", arguments={"name": "web-1", "cpus": 4}),
        Step(
            id="install-deps",
            after=("create-vm",),
            tool="install_deps",
            arguments={"packages": ["python3.12", "gunicorn", "redis"]},
            timeout_s=1.0,
        ),
        Step(
            id="configure-network",
            after=("create-vm",),
            tool="configure_network",
            arguments={"vm": "web-1", "ports": [80, 443]},
        ),
        Step(
            id="deploy",
            after=("install-deps", "configure-network"),
            tool="deploy",
            arguments={"service": "shop-api", "version": "v1.4.2"},
        ),
        Step(id="monitor", after=("deploy",), tool="monitor", arguments={"service": "shop-api"}),
    ),
    on_failure="skip_dependents",
    retry=RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0),
    max_parallel=4,
)


class Printer:
    """Prints step events as they are committed; SIGKILLs the process after ``kill_after`` steps."""

    def __init__(self, kill_after: int | None, db: Path) -> None:
        self.t0 = time.monotonic()
        self.kill_after = kill_after
        self.db = db
        self.finished_steps = 0

    def __call__(self, e: Event) -> None:
        t = f"[{time.monotonic() - self.t0:5.2f}s]"
        if isinstance(e, StepStarted):
            print(f"{t} ▶ {e.step_id:<18} attempt {e.attempt}  (idempotency key {e.idempotency_key})")
        elif isinstance(e, StepSucceeded):
            print(f"{t} ✔ {e.step_id:<18} {e.payload.splitlines()[0][:70]}")
        elif isinstance(e, StepFailed):
            wait = max(0.0, (e.next_attempt_at - e.at).total_seconds()) if e.next_attempt_at else None
            again = f"retry in {wait:.2f}s" if wait is not None else "no retry"
            print(f"{t} ✘ {e.step_id:<18} {e.kind}: {e.error[:70]} ({again})")
        elif isinstance(e, StepSkipped):
            print(f"{t} ⤼ {e.step_id:<18} skipped: {e.reason[:80]}")
        elif isinstance(e, RunFinished):
            print(f"{t} run {e.status}: {e.reason}")
        if isinstance(e, (StepSucceeded, StepSkipped)) or (isinstance(e, StepFailed) and not e.next_attempt_at):
            self.finished_steps += 1
            if self.kill_after is not None and self.finished_steps >= self.kill_after:
                print(f"\n*** kill -9 after {self.finished_steps} finished step(s). Resume with:")
                print(f"    python {sys.argv[0]} --db {self.db} --resume {e.run_id}\n", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "agentcore-deploy.db")
    parser.add_argument("--fail", action="store_true", help="make configure-network fail on every attempt")
    parser.add_argument("--kill-after", type=int, metavar="N", help="SIGKILL this process after N finished steps")
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a run from its log instead of starting one")
    args = parser.parse_args(argv)
    global FAIL_NETWORK
    FAIL_NETWORK = args.fail

    with SQLiteEventStore(args.db) as store:
        runner = PlanRunner(store, tools=TOOLS, on_event=Printer(args.kill_after, args.db))
        if args.resume:
            try:
                before = store.state_at(args.resume)
            except RunNotFound:
                known = ", ".join(r.id for r in store.runs()[-5:]) or "none"
                print(f"no run {args.resume!r} in {args.db}; recent runs: {known}", file=sys.stderr)
                return 2
            done = [s for s, st in before.plan.items() if st.status == "succeeded"]
            print(f"resuming {args.resume} from {args.db}; already done: {', '.join(done) or 'nothing'}")
            result = await runner.resume(args.resume)
        else:
            print(f"deploying shop-api; events go to {args.db}")
            result = await runner.run("deploy shop-api v1.4.2 to a new VM", PLAN)
        print(f"\nrun {result.run_id}: {result.status}")
        for sid, step in result.state.plan.items():
            print(f"  {sid:<18} {step.status:<10} attempts={step.attempts}")
        if result.reply:
            print("reply:\n  " + result.reply.replace("\n", "\n  "))
        return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
