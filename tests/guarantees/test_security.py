"""Security end to end: confinement of the code tools, no shell, no leaked keys, a view that runs no data.

``tests/tools/test_code_toolkit.py`` checks ``CodeRoot`` and ``CodeTools`` trap by trap, and
``tests/inspection/test_view.py`` hostile strings from a demo run. Here the same traps come through a whole
``Agent`` run (the model asks for them; nothing secret may reach the database), a file flips between
a regular file and a link to a secret while the ``ToolRunner`` reads it, search queries and globs
carry shell syntax and ripgrep options, the package source is scanned for shell use, the API key is
looked for everywhere a run leaves traces (database, trace file, HTML page, DEBUG logs, reprs), and
hostile strings from every channel of a run (task, model output, tool arguments, output and errors,
facts, questions, answers, plan steps) are rendered and loaded in headless Chromium.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
import re
import sqlite3
import subprocess
import threading
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import ToolCall, ToolFinished
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import ToolError
from agentcore.inspection.html import render_html
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.scripted import FunctionChatModel, calls, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import tool
from agentcore.tools.code import CodeTools
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.runner import ToolRunner
from tests.support.browser import chromium_binary
from tests.support.code_fixtures import make_trap_tree
from tests.support.openai_server import OpenAIServer, Reply, json_answer, status, text, tool_calls

PACKAGE = Path(__file__).resolve().parents[2] / "agentcore"


def database_text(db: Path) -> str:
    """Everything a database file holds, readable: raw bytes, event bodies, artifacts, snapshots."""
    raw = b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))
    parts = [raw.decode("utf-8", errors="replace")]
    conn = sqlite3.connect(db)
    try:
        parts += [row[0] for row in conn.execute("SELECT body FROM events")]
        parts += [bytes(row[0]).decode("utf-8", "replace") for row in conn.execute("SELECT content FROM artifacts")]
        for encoding, blob in conn.execute("SELECT encoding, state FROM snapshots"):
            data = zlib.decompress(blob) if encoding == "json+zlib" else blob
            parts.append(data if isinstance(data, str) else data.decode("utf-8", "replace"))
    finally:
        conn.close()
    return "\n".join(parts)


def decision_number(request: ChatRequest) -> int:
    found = re.search(r"Decisions so far: (\d+)\.", request.messages[1].content or "")
    assert found
    return int(found.group(1))


def no_ops(request: ChatRequest) -> ChatResponse:
    return respond_json({"ops": []})


# -- the code tools stay in their root, end to end -------------------------------------------------------


def test_an_agent_asking_for_files_outside_its_root_gets_none_of_them(tmp_path: Path) -> None:
    trap = make_trap_tree(tmp_path / "trap", big_file_bytes=1024)
    passwd_line = Path("/etc/passwd").read_text().splitlines()[0]
    secrets = ["never to be read", "OUTSIDE hard-linked secret", passwd_line]
    reads = [
        "../outside/secret.txt",
        "src/../../outside/secret.txt",
        str(trap.outside / "secret.txt"),
        "/etc/passwd",
        "link_etc/passwd",
        "link_secret.txt",
        "hard_secret.txt",
        "./link_etc/../passwd",
        "notes.txt\x00/../../outside/secret.txt",
    ]
    attacks: list[tuple[str, dict[str, Any]]] = [("read_file", {"path": p}) for p in reads]
    attacks += [
        ("search_code", {"query": "OUTSIDE"}),
        ("search_code", {"query": passwd_line.split(":")[0] + ":x:0:0"}),
        ("search_code", {"query": "secret", "glob": "../**"}),
        ("search_code", {"query": "secret", "glob": "/**"}),
        ("search_code", {"query": "root", "glob": "link_etc/**"}),
        ("list_files", {"glob": "../**"}),
        ("list_files", {"glob": "link_etc/**"}),
        ("find_definition", {"symbol": "../secret"}),
    ]

    def controller(request: ChatRequest) -> ChatResponse:
        n = decision_number(request)
        return calls(attacks[n]) if n < len(attacks) else say("nothing found")

    db = tmp_path / "runs.db"
    with SQLiteEventStore(db) as store:
        agent = Agent(
            FunctionChatModel(controller), FunctionChatModel(no_ops), tools=code_tools(trap.root), store=store,
            max_steps=len(attacks) + 1,
        )  # fmt: skip
        result = agent.run_sync("Read the secret next to the repository.")
        assert result.status == "succeeded"
        finished = [e for e in store.read(result.run_id) if isinstance(e, ToolFinished)]
    assert len(finished) == len(attacks)
    for event, (name, args) in zip(finished, attacks, strict=True):
        if name == "read_file":
            assert not event.ok and event.error, f"read_file({args['path']!r}) was allowed"
    everything = database_text(db)
    for secret in secrets:
        assert secret not in everything, f"{secret!r} reached the database"


def test_a_file_flipping_between_file_and_link_never_leaks_the_link_target(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "target.txt").write_text("OUTSIDE-SWAP secret\n")
    (root / "swap.txt").write_text("inside\n")
    stop = threading.Event()

    def flip() -> None:  # replace swap.txt, atomically, by a link outside and by a regular file, again and again
        i = 0
        while not stop.is_set():
            i += 1
            tmp = root / f".tmp{i}"
            if i % 2:
                os.symlink(outside / "target.txt", tmp)
            else:
                tmp.write_text("inside\n")
            os.replace(tmp, root / "swap.txt")

    db = tmp_path / "swap.db"
    outcomes: dict[str, int] = {"read": 0, "refused": 0}
    with SQLiteEventStore(db) as store:
        runner = ToolRunner(code_tools(root, rg=None), store.artifacts)

        async def read_many() -> None:
            for n in range(300):
                res = await runner.run(ToolCall(id=f"c{n}", name="read_file", arguments={"path": "swap.txt"}))
                assert "OUTSIDE" not in res.payload
                outcomes["read" if res.ok else "refused"] += 1

        flipper = threading.Thread(target=flip, daemon=True)
        flipper.start()
        try:
            asyncio.run(read_many())
        finally:
            stop.set()
            flipper.join(timeout=10)
    assert "OUTSIDE-SWAP" not in database_text(db)
    assert outcomes["read"] > 0 and outcomes["refused"] > 0, f"the flips never met the reads: {outcomes}"
    print(outcomes)


# -- no shell, ever ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["ripgrep", "python"])
def test_shell_syntax_and_options_in_queries_run_nothing(tmp_path: Path, engine: str) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.txt").write_text("some text; and $(more) `text` | here\n")
    marker = tmp_path / "pwned"
    script = tmp_path / "pre.sh"  # ripgrep's --pre runs a program: it must never be reached
    script.write_text(f'#!/bin/sh\ntouch {marker}\ncat "$1"\n')
    script.chmod(0o755)
    payloads = [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}",
        f"| touch {marker}",
        f"&& touch {marker}",
        f"' ; touch {marker} ; '",
        f'" ; touch {marker} ; "',
        f"--pre={script}",
        f"--pre {script}",
        "-e",
        f"\\$(touch {marker})",
    ]
    tools = CodeTools(root, rg="rg" if engine == "ripgrep" else None)
    answered = 0
    for payload in payloads:
        for kwargs in ({"query": payload}, {"query": payload, "regex": True}, {"query": "text", "glob": payload}):
            try:
                tools.search_code(**kwargs)  # type: ignore[arg-type]
                answered += 1
            except ToolError:
                pass
            assert not marker.exists(), f"{kwargs} ran a command"
        for call in (tools.list_files, tools.find_definition):
            try:
                call(payload)
            except ToolError:
                pass
            assert not marker.exists(), f"{payload!r} ran a command"
    assert answered > len(payloads)  # most searches ran (as text), they did not just all fail


SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
    ("pty", "spawn"),
}
SPAWNS = {"run", "Popen", "call", "check_call", "check_output", "create_subprocess_exec"}


def test_the_package_never_uses_a_shell() -> None:
    problems = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{where}: shell={ast.unparse(kw.value)}")
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) in SHELL_CALLS or (
                    func.attr.startswith(("spawnl", "spawnv", "exec")) and func.value.id == "os"
                ):
                    problems.append(f"{where}: {func.value.id}.{func.attr}")
                if (
                    func.attr in SPAWNS
                    and node.args
                    and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))
                ):
                    problems.append(f"{where}: {func.attr} given a command string, not an argument list")
            if isinstance(func, ast.Name) and func.id in ("system", "popen"):
                problems.append(f"{where}: {func.id}()")
    assert problems == []


# -- the API key stays out of everything a run leaves behind ----------------------------------------------

KEY = "sk-secret-9b8a7c6d5e4f3a2b"


def test_the_api_key_is_never_recorded_logged_or_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def answer(body: dict[str, Any]) -> Reply:
        if "response_format" in body:
            fact = {"key": "colour", "value": "blue", "source": "user"}
            return json_answer({"ops": [{"op": "append_known_facts", "facts": [fact]}]})
        prompt = body["messages"][1]["content"]
        return tool_calls([("lookup", {"key": "sky"})]) if "Decisions so far: 0." in prompt else text("Blue.")

    @tool
    def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        return f"{key}: blue"

    echo = {"error": {"message": f"Rate limit reached for key {KEY}; Authorization: Bearer {KEY}"}}
    refused = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
    db = tmp_path / "keys.db"
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    with OpenAIServer(handler=answer) as server, SQLiteEventStore(db) as store:

        model = OpenAIChatModel("key-model", api_key=KEY, base_url=server.base_url, clock=FakeClock(), max_attempts=3)
        agent = Agent(model, tools=[lookup], store=store)
        server.enqueue(status(429, body=echo), status(500, body=echo))  # retried: the echoes are dropped
        ok = agent.run_sync("What colour is the sky?")
        server.enqueue(status(401, body=refused))  # refused: the reason quotes the server, redacted
        bad = agent.run_sync("And the sea?")
        assert (ok.status, bad.status) == ("succeeded", "failed")
        assert bad.reason is not None and "[redacted]" in bad.reason
        assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.completion_requests)  # it was used
        for result in (ok, bad):
            trace = tmp_path / f"{result.run_id}.jsonl"
            export_run(store, result.run_id, trace)
            shown += [trace.read_text(), render_html(store, result.run_id), repr(result), str(result.reason)]
        shown += [repr(model), str(model.describe()), repr(agent), repr(agent.config()), repr(store)]
    shown.append(database_text(db))
    shown += [caplog.text, *(repr(r.__dict__) for r in caplog.records)]
    assert len(caplog.records) > 0  # DEBUG logging of the HTTP stack was on
    for text_ in shown:
        assert KEY not in text_
        assert "Bearer" not in text_


def test_a_plan_steps_output_never_records_the_key(tmp_path: Path) -> None:
    class KeyHolder(FunctionChatModel):
        """A model holding the key (like ``OpenAIChatModel``): runs must redact it."""

        def redact(self, text: str) -> str:
            return text.replace(KEY, "[redacted]")

    @tool
    def env() -> str:
        """Print the environment."""
        return f"OPENAI_API_KEY={KEY}"

    planner = KeyHolder(lambda request: say("never asked: the plan is given"), name="holder")
    with SQLiteEventStore(tmp_path / "plan-keys.db") as store:
        plan = Plan(steps=(Step(id="dump", description="print the environment", tool="env"),))
        result = PlanRunner(store, tools=[env], planner_model=planner).run_sync("dump the environment", plan)
        assert result.status == "succeeded" and planner.requests == []
        done = [e for e in store.read(result.run_id) if e.type == "step_succeeded"]
        assert done and done[0].payload == "OPENAI_API_KEY=[redacted]"  # scheduler drafts are redacted too
        export_run(store, result.run_id, tmp_path / "plan.jsonl")
    assert KEY not in (tmp_path / "plan.jsonl").read_text() and KEY not in database_text(tmp_path / "plan-keys.db")


# -- the HTML view runs no data ---------------------------------------------------------------------------

PWN = "document.title='pwned';document.body.setAttribute('data-pwned','1')"
HOSTILE = [
    f"</script><script>{PWN}</script>",
    f'<img src=x onerror="{PWN}">',
    f'<svg onload="{PWN}"></svg>',
    f'<a id="pwn-link" href="javascript:{PWN}">click</a>',
    f'" onmouseover="{PWN}" x="',
    f"<!-- --><script>{PWN}</script>",
    f']]><iframe srcdoc="<script>{PWN}</script>"></iframe>\u2028\u2029',
]
EVIL = " ".join(HOSTILE)


def hostile_agent_run(store: SQLiteEventStore) -> str:
    @tool(name="lookup")
    def lookup(key: str) -> str:
        """Look a key up; the output is hostile too.

        Args:
            key: The key.
        """
        if key == "fail":
            raise ToolError(f"no such key: {EVIL}")
        return f"{key} -> {EVIL}"

    def controller(request: ChatRequest) -> ChatResponse:
        n = decision_number(request)
        if n == 0:
            decision = {
                "thought": EVIL,
                "tool_calls": [
                    {"name": "lookup", "arguments": {"key": EVIL}},
                    {"name": "lookup", "arguments": {"key": "fail"}},
                ],
            }
            return ChatResponse(content=json.dumps(decision))
        if n == 1:
            return ChatResponse(content=json.dumps({"ask_user": EVIL}))
        return say(EVIL)

    def processor(request: ChatRequest) -> ChatResponse:
        facts = [{"key": EVIL[:400], "value": EVIL, "source": EVIL}]
        questions = [{"id": f"q-{len(request.messages)}-{EVIL[:50]}", "text": EVIL}]
        return respond_json(
            {
                "ops": [
                    {"op": "append_known_facts", "facts": facts},
                    {"op": "add_open_questions", "questions": questions},
                ]
            }
        )

    agent = Agent(
        FunctionChatModel(controller, name=EVIL[:60]), FunctionChatModel(processor), tools=[lookup], store=store
    )
    first = agent.run_sync(EVIL, run_id="hostile-agent")
    assert first.status == "waiting_for_user"
    assert agent.answer_sync("hostile-agent", EVIL).status == "succeeded"
    return "hostile-agent"


def hostile_plan_run(store: SQLiteEventStore) -> str:
    @tool(name="boom")
    def boom(text: str) -> str:
        """Fail with a hostile message.

        Args:
            text: Echoed.
        """
        raise ToolError(f"failed on {text}")

    plan = Plan(
        steps=(
            Step(id=HOSTILE[0][:150], description=EVIL, tool="boom", arguments={"text": EVIL}),
            Step(
                id=HOSTILE[1][:150], description=EVIL, after=(HOSTILE[0][:150],), tool="boom", arguments={"text": "x"}
            ),
        ),
        retry=RetryPolicy(max_attempts=1),
    )
    result = asyncio.run(PlanRunner(store, tools=[boom]).run(EVIL, plan, run_id="hostile-plan"))
    assert result.status == "failed"
    return "hostile-plan"


def dom_after_scripts(page: Path, profile: Path) -> str:
    args = [
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri(),
    ]  # fmt: skip
    return subprocess.run(args, check=True, capture_output=True, timeout=90, text=True).stdout


class Elements(HTMLParser):
    """The elements of a DOM dump: (tag, attributes) in document order, and the title's text."""

    def __init__(self, dom: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        # the document's title is the first one (SVG <title> elements are tooltips, not the page title)
        self._in_title = tag == "title" and sum(t == "title" for t, _ in self.elements) == 1

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


@pytest.mark.parametrize("make_run", [hostile_agent_run, hostile_plan_run], ids=["agent", "plan"])
def test_hostile_strings_from_every_channel_never_run_in_the_view(tmp_path: Path, make_run: Any) -> None:
    with SQLiteEventStore(tmp_path / "hostile.db") as store:
        run_id = make_run(store)
        page = tmp_path / f"{run_id}.html"
        page.write_text(render_html(store, run_id), encoding="utf-8")
    raw = dom_after_scripts(page, tmp_path / "profile")
    dom = Elements(raw)
    assert dom.title == f"agentcore run {run_id}"  # no payload renamed the page
    tags = [tag for tag, _ in dom.elements]
    assert tags.count("script") == 2  # the data block and the page's own script, nothing injected
    assert not {"img", "iframe", "a", "object", "embed", "foreignobject", "image", "use"} & set(tags), sorted(set(tags))
    # the one SVG is the page's own plan drawing (empty for an agent run)
    assert [attrs.get("id") for tag, attrs in dom.elements if tag == "svg"] == ["dag-svg"]
    for tag, attrs in dom.elements:
        assert "data-pwned" not in attrs and attrs.get("id") != "pwn-link", (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)  # no event handler attribute at all
        assert not any("javascript:" in (attrs.get(a) or "") for a in ("href", "src", "action")), (tag, attrs)
    body = next(attrs for tag, attrs in dom.elements if tag == "body")
    assert body.get("data-ready") == "1"  # the page's own script ran to the end
    assert "&lt;img src=x onerror=" in raw and "&lt;/script&gt;&lt;script&gt;document.title" in raw  # shown as text
