"""The offline model behind a wire that carries only messages (an OpenAI-compatible server in tests).

``ChatRequest.inputs`` is recorded but never sent, so a model reached over HTTP sees only the prompt
text. ``inputs_from_prompt`` reads back, from the controller's and processor's rendered prompts, the
same keys the roles put in ``inputs`` (``task`` and ``facts``; ``input``, ``tool``, ``arguments``,
``ok``, ``artifact``, ``error``, ``call_id``, ``payload``, ``answer``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentcore.core.text import unclip
from agentcore.models.base import ChatRequest

_FACT_LINE = re.compile(r"^- (?P<key>[^:]+(?::[^:\s]+)*?): (?P<value>.*?)(?: \[source: .*\])?$")


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in re.split(r"^# ", text, flags=re.M):
        if block.strip():
            title, _, body = block.partition("\n")
            out[title.strip()] = body
    return out


def inputs_from_prompt(request: ChatRequest) -> dict[str, Any]:
    """``request.inputs`` when the role filled it, else the same keys read from the prompt text."""
    if request.inputs:
        return dict(request.inputs)
    text = "\n".join(m.content or "" for m in request.messages if m.role == "user")
    if request.role == "controller":
        sections = _sections(text)
        facts = []
        for title, body in sections.items():
            if title.startswith("Known facts"):
                for line in body.splitlines():
                    if m := _FACT_LINE.match(line):
                        value, cut = unclip(m.group("value"))
                        facts.append({"key": m.group("key"), "value": value, "cut": cut})
        return {"task": sections.get("Task", "").strip(), "facts": facts}
    head, _, payload = text.partition("\npayload:\n")
    fields = dict(re.findall(r"^(call id|tool|arguments|ok|artifact|error): (.*)$", head, flags=re.M))
    if not fields.get("tool"):
        answer = text.partition("answer:\n")[2].split("\n(use source")[0].strip()
        return {"input": "user_answer", "answer": answer}
    try:
        args = json.loads(fields.get("arguments", "{}"))
    except json.JSONDecodeError:
        args = {}
    artifact = fields.get("artifact")
    return {
        "input": "tool_result",
        "call_id": fields.get("call id", ""),
        "tool": fields["tool"],
        "arguments": args if isinstance(args, dict) else {},
        "ok": fields.get("ok") == "true",
        "artifact": artifact if artifact and artifact != "none" else None,
        "error": fields.get("error"),
        "payload": payload,
    }
