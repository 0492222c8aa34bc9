"""A run as one self-contained HTML page: timeline, state at any seq, diffs, facts, artifacts.

The page makes no network request (inline CSS and JS; a Content-Security-Policy allows nothing
else, and only the page's own script by its hash). Run data never becomes markup: the few strings
in the static HTML go through ``html.escape``; everything else travels as JSON in a
``<script type="application/json">`` block with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, and
the script inserts it with ``textContent`` only.

The state at every seq is not embedded (that would grow with events x state). Instead each event
carries the RFC 6902 diff from the previous state and the script folds those diffs, keeping a
checkpoint every ``CHECKPOINT`` seqs, so any seq is reached quickly and the page stays about the
size of the log.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from datetime import datetime
from importlib import resources
from typing import Any

from agentcore.core.events import Event, LLMCalled, StatePatched, StepSucceeded, ToolFinished
from agentcore.core.fold import RunState, apply, compile_patch, diff_states
from agentcore.core.patches import AppendKnownFacts, JsonPatch
from agentcore.inspection.queries import artifact_preview, event_rows, provenance, usage
from agentcore.storage.base import EventStore

__all__ = ("embed_json", "render_html", "seq_diffs")

PREVIEW_BYTES = 4096
"""Bytes of each artifact shown on the page."""
MAX_ARTIFACTS = 200
"""At most this many artifacts get a preview (the page stays small for huge runs)."""

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(value: Any) -> str:
    """JSON text safe to place inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` can only occur inside JSON strings, so escaping them everywhere keeps the
    value while making ``</script>`` and ``<!--`` impossible.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _ptr(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _json_diff(path: str, a: Any, b: Any) -> list[dict[str, Any]]:
    """RFC 6902 from ``a`` to ``b``: per key for objects, a sliding window for lists, else replace."""
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        ops: list[dict[str, Any]] = [{"op": "remove", "path": _ptr(path, k)} for k in a if k not in b]
        for k, v in b.items():
            if k not in a:
                ops.append({"op": "add", "path": _ptr(path, k), "value": v})
            elif a[k] != v:
                ops.extend(_json_diff(_ptr(path, k), a[k], v) if path == "" else [_replace(_ptr(path, k), v)])
        return ops
    if isinstance(a, list) and isinstance(b, list):
        # windows such as the recent payloads drop items at the front and add at the end
        for drop in range(len(a) + 1):
            kept = len(a) - drop
            if a[drop:] == b[:kept]:
                ops = [{"op": "remove", "path": _ptr(path, 0)} for _ in range(drop)]
                return ops + [{"op": "add", "path": _ptr(path, "-"), "value": v} for v in b[kept:]]
    return [_replace(path, b)]


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def _light(state: RunState) -> dict[str, Any]:
    return state.model_dump(mode="json", exclude={"known_facts"})


def seq_diffs(events: list[Event]) -> list[list[dict[str, Any]]]:
    """For each event, the RFC 6902 operations from the state before it to the state after it.

    Typed patches are compiled (cost of the patch). Other events never touch the facts (the one
    part of the state that grows large), so the rest of the state is diffed; a raw ``json_patch``
    falls back to a full diff.
    """
    state = RunState()
    prev = _light(state)
    out: list[list[dict[str, Any]]] = []
    for e in events:
        if isinstance(e, StatePatched) and not any(isinstance(op, JsonPatch) for op in e.ops):
            ops = compile_patch(state, e.ops, e.seq)
            apply(state, e)
            ops.append(_replace("/last_seq", e.seq))
        elif isinstance(e, StatePatched):
            before = state.clone()
            apply(state, e)
            ops = diff_states(before, state)
        else:
            facts = state.known_facts
            apply(state, e)
            if state.known_facts is not facts or len(facts) != len(state.known_facts):  # pragma: no cover
                raise AssertionError(f"{e.type} changed the facts; view.seq_diffs needs a full diff for it")
            ops = None
        now = _light(state)
        out.append(ops if ops is not None else _json_diff("", prev, now))
        prev = now
    return out


def _fact_provenance(events: list[Event], by_seq: dict[int, Event]) -> dict[str, list[dict[str, Any]]]:
    result = {}
    for e in events:
        if isinstance(e, StatePatched) and any(isinstance(op, AppendKnownFacts) for op in e.ops):
            result[str(e.seq)] = [
                {"seq": link["seq"], "type": link["type"], "why": link["why"], "artifact": link.get("artifact")}
                for link in provenance(by_seq, e.seq)
            ]
    return result


def _label(e: Event, ident: str) -> str:
    if isinstance(e, ToolFinished) and e.artifact is not None and e.artifact.id == ident:
        return f"output of {e.name} [{e.call_id}] at seq {e.seq}"
    if isinstance(e, LLMCalled) and e.request_artifact is not None and e.request_artifact.id == ident:
        return f"{e.role} request at seq {e.seq}"
    if isinstance(e, StepSucceeded) and e.result is not None and e.result.id == ident:
        return f"result of step {e.step_id} at seq {e.seq}"
    return f"named at seq {e.seq}"


def _artifacts(store: EventStore, events: list[Event], facts: dict[str, Any]) -> dict[str, Any]:
    wanted: dict[str, str] = {}
    for e in events:
        for ident in _DIGEST.findall(e.model_dump_json()):  # typed refs and ids named in text alike
            wanted.setdefault(ident, _label(e, ident))
    for f in facts.values():
        if f.get("artifact_id"):
            wanted.setdefault(f["artifact_id"], f"named by fact {f['key']}")
    out: dict[str, Any] = {}
    for ident, label in wanted.items():
        if len(out) >= MAX_ARTIFACTS:
            break
        if store.artifacts.exists(ident):  # a request digest or a model-made id may name nothing stored
            out[ident] = {**artifact_preview(store, ident, PREVIEW_BYTES), "label": label}
    return out


def page_data(store: EventStore, run_id: str) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict (embedded by ``render_html``)."""
    info = store.run(run_id)
    events = list(store.read(run_id))
    by_seq: dict[int, Event] = {e.seq: e for e in events}
    diffs = seq_diffs(events)
    final = store.state_at(run_id) if events else RunState()
    rows = event_rows(events)
    for row in rows:
        del row["at"]  # also in the event body
    return {
        "run": {
            "id": info.id,
            "task": info.task,
            "status": info.status,
            "created": info.created,
            "parent_run_id": info.parent_run_id,
            "forked_at_seq": info.forked_at_seq,
            "last_seq": len(events),
        },
        "events": rows,
        "initial": RunState().to_json(),
        "diffs": diffs,
        "provenance": _fact_provenance(events, by_seq),
        "artifacts": _artifacts(store, events, {k: v.model_dump() for k, v in final.known_facts.items()}),
        "usage": usage(store, run_id),
    }


def _asset(name: str) -> str:
    return resources.files("agentcore.inspection").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _duration(events: list[dict[str, Any]]) -> str:
    if len(events) < 2:
        return "0 s"
    first = datetime.fromisoformat(events[0]["event"]["at"])
    last = datetime.fromisoformat(events[-1]["event"]["at"])
    return f"{(last - first).total_seconds():.1f} s"


def render_html(store: EventStore, run_id: str) -> str:
    """The run as one self-contained HTML page (no external URL, no network request).

    Raises:
        RunNotFound: no such run.
    """
    data = page_data(store, run_id)
    script = _asset("view.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:"
    run = data["run"]
    e = html.escape
    total = data["usage"]["total"]["total_tokens"]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>agentcore run {e(run['id'])}</title>\n"
        f"<style>{_asset('view.css')}</style>\n"
        "</head><body>\n"
        '<header><div class="title"><span class="brand">agentcore</span> run '
        f'<code id="run-id">{e(run["id"])}</code>'
        f'<span id="run-status" class="status s-{e(run["status"])}">{e(run["status"])}</span></div>\n'
        f'<div id="run-task" class="task">{e(run["task"])}</div>\n'
        f'<div class="stats">{len(data["events"])} events · {total} tokens · {_duration(data["events"])}'
        + (
            f" · fork of <code>{e(run['parent_run_id'])}</code> at seq {run['forked_at_seq']}"
            if run["parent_run_id"]
            else ""
        )
        + "</div></header>\n"
        '<main><nav id="timeline-pane"><div class="pane-head">Timeline '
        '<input id="filter" type="search" placeholder="filter type or text"></div>'
        '<ol id="timeline"></ol></nav>\n'
        '<section id="detail">'
        '<div id="seqbar"><button id="prev" type="button">&#9664;</button>'
        '<input id="seq" type="range" min="0" value="0"><button id="next" type="button">&#9654;</button>'
        '<span id="seq-label"></span></div>\n'
        '<div class="card"><h2>Event</h2><div id="event-meta"></div><pre id="event-json"></pre></div>\n'
        '<div class="card"><h2>Change from the previous seq</h2><table id="diff"></table></div>\n'
        '<div class="card"><h2>Known facts</h2><table id="facts"></table></div>\n'
        '<div class="card"><h2>State</h2><details id="state-box"><summary>state JSON at this seq</summary>'
        '<pre id="state"></pre></details></div>\n'
        '<div class="card"><h2>Artifacts</h2><div id="artifacts"></div></div>\n'
        "</section></main>\n"
        f'<script type="application/json" id="run-data">{embed_json(data)}</script>\n'
        f"<script>{script}</script>\n"
        "</body></html>\n"
    )
