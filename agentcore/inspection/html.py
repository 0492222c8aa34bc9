"""A run as one self-contained HTML page: timeline, state at any seq, diffs, facts, artifacts.

The page makes no network request (inline CSS and JS; a Content-Security-Policy allows nothing
else, and only the page's own script by its hash). Run data never becomes markup: the few strings
in the static HTML go through ``html.escape``; everything else travels as JSON in a
``<script type="application/json">`` block with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, and
the script inserts it with ``textContent`` only.

The page is the template ``assets/view.html`` (beside ``view.css`` and ``view.js``) filled by
``string.Template`` with HTML-escaped values: a header (repository, models, status, duration,
tokens), the outcome (the answer as text, the failure reason, or the question), a plan run's DAG
(drawn by the script as inline SVG), the timeline and the details of one seq.

The page stays about the size of the log. The state at every seq is not embedded (that would grow
with events x state): each event carries the RFC 6902 diff from the previous state and the script
folds those diffs, keeping a checkpoint every ``CHECKPOINT`` seqs. Provenance is stored by
reference: one link per event (``links``), which the script follows, never a copied chain.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from string import Template
from typing import Any

from agentcore.core.events import Event, LLMCalled, RunStarted, StatePatched, StepSucceeded, ToolFinished
from agentcore.core.fold import RunState, apply, compile_patch, diff_states
from agentcore.core.json_patch import json_diff
from agentcore.core.patches import AppendKnownFacts, JsonPatch
from agentcore.inspection.dag import plan_layout
from agentcore.inspection.provenance import EventIndex, link_row, next_link
from agentcore.inspection.queries import artifact_preview, event_rows, usage
from agentcore.storage.base import EventStore

__all__ = ("embed_json", "page_data", "render_html", "seq_diffs")

PREVIEW_BYTES = 4096
"""Bytes of each artifact shown on the page."""
MAX_ARTIFACTS = 200
"""At most this many artifacts get a preview (the page stays small for huge runs)."""

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Unicode bidi controls, shown as ``\\u202e`` text in the page (as ``cli.support.inert`` and the
page's script do): raw, they would reorder the displayed text ("Trojan Source")."""
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
        out.append(ops if ops is not None else json_diff(prev, now))
        prev = now
    return out


def _links(events: list[Event], by_seq: dict[int, Event]) -> dict[str, dict[str, Any]]:
    """One provenance link per event on some fact's story: ``{seq: {type, why, artifact?, next}}``.

    The page follows ``next`` from a fact's ``seq`` to draw its story, so a chain of n patches each
    caused by the one before costs n links, not n chains of up to n links.
    """
    todo = [
        e.seq for e in events if isinstance(e, StatePatched) and any(isinstance(op, AppendKnownFacts) for op in e.ops)
    ]
    out: dict[str, dict[str, Any]] = {}
    while todo:
        seq = todo.pop()
        event = by_seq.get(seq)
        if event is None or str(seq) in out:
            continue
        nxt, _ = next_link(event, by_seq)
        row = link_row(event)
        del row["seq"]
        out[str(seq)] = {**row, "next": None if nxt is None else nxt.seq}
        if nxt is not None:
            todo.append(nxt.seq)
    return out


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


def _header(events: list[Event], final: RunState, total_tokens: int) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for e in events:
        if isinstance(e, RunStarted):
            config = dict(e.config)
            break
    meta = config.get("metadata")
    repo = meta.get("repo") if isinstance(meta, dict) else None
    models = {
        role: config[f"{role}_model"]
        for role in ("controller", "processor", "planner")
        if isinstance(config.get(f"{role}_model"), str) and config[f"{role}_model"]
    }
    duration = (events[-1].at - events[0].at).total_seconds() if events else 0.0
    return {
        "repository": repo if isinstance(repo, str) else None,
        "models": models,
        "status": final.status,
        "duration_s": duration,
        "tokens": total_tokens,
        "reply": final.reply,
        "reason": final.reason,
        "question": final.waiting_on,
    }


def page_data(store: EventStore, run_id: str) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict (embedded by ``render_html``).

    Its size grows with the log: each event once, its RFC 6902 diff, one provenance link per
    event on a fact's story (``links``), at most ``MAX_ARTIFACTS`` previews of ``PREVIEW_BYTES``.
    """
    info = store.run(run_id)
    events = list(store.read(run_id))
    by_seq = EventIndex(events)
    diffs = seq_diffs(events)
    final = store.state_at(run_id) if events else RunState()
    rows = event_rows(events)
    for row in rows:
        del row["at"]  # also in the event body
    spent = usage(store, run_id)
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
        "header": _header(events, final, spent["total"]["total_tokens"]),
        "plan": plan_layout(final),
        "events": rows,
        "initial": RunState().to_json(),
        "diffs": diffs,
        "links": _links(events, by_seq),
        "artifacts": _artifacts(store, events, {k: v.model_dump() for k, v in final.known_facts.items()}),
        "usage": spent,
    }


def _asset(name: str) -> str:
    return resources.files("agentcore.inspection").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


_OUTCOME_TITLES = {
    "succeeded": "Answer",
    "failed": "Why it failed",
    "cancelled": "Why it was cancelled",
    "waiting_for_user": "The agent asks",
    "running": "Not finished",
}


def _outcome(header: dict[str, Any]) -> tuple[str, str]:
    status = header["status"]
    title = _OUTCOME_TITLES.get(status, status)
    if status == "succeeded":
        return title, header["reply"] or "(no reply text)"
    if status == "waiting_for_user":
        return title, header["question"] or ""
    if status == "running":
        return title, "the run has no final event yet (interrupted, or still running): `agentcore resume` continues it"
    return title, header["reason"] or "(no reason recorded)"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"


def render_html(store: EventStore, run_id: str) -> str:
    """The run as one self-contained HTML page (no external URL, no network request).

    The page is ``assets/view.html`` filled by ``string.Template``; every value put into it is
    HTML-escaped, and the run's data travels as JSON (``embed_json``) for the script.

    Raises:
        RunNotFound: no such run.
    """
    data = page_data(store, run_id)
    script = _asset("view.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    run, header = data["run"], data["header"]
    title, text = _outcome(header)
    models = ", ".join(f"{role} {name}" for role, name in header["models"].items())
    values = {
        "run_id": run["id"],
        "status": run["status"],
        "status_class": re.sub(r"[^a-z_]", "", run["status"]),
        "task": run["task"],
        "repository": header["repository"] or "(not recorded)",
        "models": models or "(not recorded)",
        "duration": _duration(header["duration_s"]),
        "tokens": str(header["tokens"]),
        "events": str(run["last_seq"]),
        "fork_hidden": "" if run["parent_run_id"] else "hidden",
        "parent_run_id": run["parent_run_id"] or "",
        "forked_at_seq": "" if run["forked_at_seq"] is None else str(run["forked_at_seq"]),
        "outcome_title": title,
        "outcome_text": text,
        "plan_hidden": "" if data["plan"] else "hidden",
    }
    page = Template(_asset("view.html"))
    return page.substitute(
        {k: html.escape(_BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", v)) for k, v in values.items()},
        csp=f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:",
        style=_asset("view.css"),
        data=embed_json(data),
        script=script,
    )
