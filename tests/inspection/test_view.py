"""The HTML view: self-contained, safe with hostile run data, and working in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import (
    BaseEvent,
    RunFinished,
    RunStarted,
    StatePatched,
    StepFailed,
    StepStarted,
    StepSucceeded,
    UserMessaged,
)
from agentcore.core.fold import apply_json_patch
from agentcore.core.patches import (
    AddOpenQuestions,
    AnswerQuestion,
    JsonPatch,
    QuestionInput,
    ReplacePlan,
    SetStepStatus,
)
from agentcore.core.plans import Plan, Step
from agentcore.inspection.html import embed_json, render_html, seq_diffs
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.testing import demo_agent
from tests.support.browser import chromium_binary

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)

HOSTILE_TASK = "<script>document.title='pwned'</script> and </script><!-- \u2028 & more"
HOSTILE_TABLE = {
    "plain": "first value",
    '"onerror=alert(1)': "</script><script>document.body.setAttribute('data-pwned','1')</script>",
    "img": "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">",
    "__proto__": '{"polluted": true}',
}


def record(store: EventStore, table: dict[str, str], task: str, run_id: str) -> str:
    result = asyncio.run(demo_agent(table, store=store).run(task, run_id=run_id))
    assert result.status == "succeeded"
    return run_id


def chromium(tmp_path: Path, page: Path, fragment: str = "", *, screenshot: Path | None = None) -> str:
    """Load ``page`` in headless Chromium (no network) and return the DOM after its scripts ran."""
    args = [
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,900",
    ]  # fmt: skip
    url = page.resolve().as_uri() + fragment
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=60)
    out = subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True, timeout=60, text=True)
    return out.stdout


def section(dom: str, element_id: str) -> str:
    match = re.search(rf'<(\w+) id="{element_id}"[^>]*>(.*?)</\1>', dom, re.DOTALL)
    assert match, f"no element #{element_id} in the DOM"
    return match.group(2)


def test_page_is_self_contained() -> None:
    store = MemoryEventStore()
    record(store, {"alpha": "first value"}, "Look up alpha", "r1")
    page = render_html(store, "r1")
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert not re.search(r"\s(src|href|action)\s*=", page)  # no resource or link of any kind
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and "default-src 'none'" in csp.group(1) and "script-src 'sha256-" in csp.group(1)
    assert page.count("<script") == 2  # the data block and the page's own script


def test_embedded_json_cannot_close_the_script_block() -> None:
    value = {"a": "</script><script>x()</script>", "b": "<!-- \u2028\u2029 & >", "</script>": [1, "ü"]}
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value


def _plan_run(store: EventStore) -> str:
    store.create_run("plan run", run_id="p")
    at = iter(T0 + timedelta(seconds=i) for i in range(100))
    plan = Plan(steps=(Step(id="s1", description="first"), Step(id="s2", description="second", after=("s1",))))
    spec: list[tuple[type[BaseEvent], dict[str, Any]]] = [
        (RunStarted, {"task": "plan run", "plan": plan}),
        (StatePatched, {"ops": (AddOpenQuestions(questions=(QuestionInput(id="q/1~x", text="why?"),)),)}),
        (StepStarted, {"step_id": "s1", "attempt": 1, "idempotency_key": "p/s1/1"}),
        (StepSucceeded, {"step_id": "s1", "attempt": 1, "payload": "done"}),
        (StatePatched, {"ops": (AnswerQuestion(id="q/1~x", answer="because"),)}),
        (UserMessaged, {"text": "hi"}),
        (StatePatched, {"ops": (JsonPatch(patch=({"op": "replace", "path": "/on_failure", "value": "abort"},)),)}),
        (StepStarted, {"step_id": "s2", "attempt": 1, "idempotency_key": "p/s2/1"}),
        (StepFailed, {"step_id": "s2", "attempt": 1, "error": "boom", "kind": "timeout"}),
        (StatePatched, {"ops": (ReplacePlan(steps=(Step(id="s3", description="third"),)),)}),
        (StatePatched, {"ops": (SetStepStatus(step_id="s3", status="skipped", error="not needed"),)}),
        (RunFinished, {"status": "succeeded", "reply": "ok"}),
    ]
    events = [cls(run_id="p", seq=i, at=next(at), **fields) for i, (cls, fields) in enumerate(spec, start=1)]
    store.append("p", events, 0)
    return "p"


@pytest.mark.parametrize("kind", ["demo", "plan"])
def test_seq_diffs_rebuild_the_state_at_every_seq(kind: str) -> None:
    store = MemoryEventStore()
    run_id = record(store, HOSTILE_TABLE, HOSTILE_TASK, "d") if kind == "demo" else _plan_run(store)
    events = list(store.read(run_id))
    diffs = seq_diffs(events)
    assert len(diffs) == len(events)
    doc = store.state_at(run_id, 0).to_json()
    for seq, ops in enumerate(diffs, start=1):
        doc = apply_json_patch(doc, ops)
        assert doc == store.state_at(run_id, seq).to_json(), f"diff of seq {seq} does not rebuild the state"


def test_timeline_state_and_facts_in_chromium(tmp_path: Path) -> None:
    store = MemoryEventStore()
    record(store, {"alpha": "first value", "beta": "second value"}, "Look up alpha and beta", "r1")
    page = tmp_path / "run.html"
    page.write_text(render_html(store, "r1"), encoding="utf-8")
    shot = tmp_path / "run.png"
    dom = chromium(tmp_path, page, "#seq=7", screenshot=shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert 'data-ready="1"' in dom and 'data-seq="7"' in dom  # the page's script ran and chose seq 7
    timeline = section(dom, "timeline")
    assert timeline.count("<li") == 16 + 1  # every event, plus the empty state at seq 0
    assert re.findall(r'<li data-seq="(\d+)"[^>]*class="sel"', timeline) == ["7"]  # one entry selected
    facts = section(dom, "facts")
    assert "first value" in facts and "second value" not in facts  # the fact of seq 13 is not known yet
    assert "7 state_patched" in facts and "5 tool_finished" in facts and "2 llm_called" in facts  # provenance
    assert "/known_facts/alpha" in section(dom, "diff")
    assert "seq 7 / 16" in dom
    later = chromium(tmp_path, page, "#seq=16")
    assert "second value" in section(later, "facts") and 'data-seq="16"' in later
    first = chromium(tmp_path, page, "#seq=0")
    assert "no facts yet" in section(first, "facts")


def test_hostile_strings_are_shown_literally_and_never_run(tmp_path: Path) -> None:
    store = MemoryEventStore()
    record(store, HOSTILE_TABLE, HOSTILE_TASK, "hostile")
    html_text = render_html(store, "hostile")
    assert "<script>document" not in html_text and "<img src=x" not in html_text and "<!--" not in html_text
    page = tmp_path / "hostile.html"
    page.write_text(html_text, encoding="utf-8")
    dom = chromium(tmp_path, page, screenshot=tmp_path / "hostile.png")
    assert 'data-ready="1"' in dom  # the page's own script did run
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]  # no injected script or handler ran
    assert "<title>agentcore run hostile</title>" in dom
    assert "<img" not in dom and dom.count("<script") == 2
    # the text is there, literally (the DOM serializer escapes it back)
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in section(dom, "run-task")
    facts = section(dom, "facts")
    assert "&lt;/script&gt;&lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt;" in facts
    assert "&lt;img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"&gt;" in facts
    assert "<code>__proto__</code>" in facts and '<code>"onerror=alert(1)</code>' in facts


BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_bidi_controls_in_run_data_are_shown_as_escapes_not_applied(tmp_path: Path) -> None:
    """U+202E and the other bidi controls in a task, a fact key and a value would reorder the shown
    text ("Trojan Source"); the page shows each as ``\\u202e`` text, in the header and from its script."""
    store = MemoryEventStore()
    task = "deploy user\u202e \u2066// admin\u2069 \u2066 now\u200f\u061c"
    record(store, {"k\u202ey": "v\u2067al\u202a\u200eue"}, task, "bidi")
    page = tmp_path / "bidi.html"
    page.write_text(render_html(store, "bidi"), encoding="utf-8")
    dom = chromium(tmp_path, page)
    assert 'data-ready="1"' in dom
    shown = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)  # the JSON data block holds the raw text
    assert not BIDI.search(shown), repr(BIDI.search(shown))
    assert "deploy user\\u202e \\u2066// admin\\u2069 \\u2066 now\\u200f\\u061c" in section(dom, "run-task")
    facts = section(dom, "facts")
    assert "k\\u202ey" in facts and "v\\u2067al\\u202a\\u200eue" in facts
