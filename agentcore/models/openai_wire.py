"""Wire format helpers for ``agentcore.models.openai``: request shaping and response parsing, no I/O.

Everything here works on plain JSON-like data so it can be tested without a server. The JSON
tool-calling convention (for servers that do not return native ``tool_calls``) is: the model
answers with one object ``{"tool_calls": [{"name": ..., "arguments": {...}}], "content": <text or
null>}``; the instructions are the package prompt ``prompts/json_tools.md``. In auto mode a
short note (``prompts/auto_tools.md``) names the tools and this format next to the native
``tools``. Reading such an answer back is ``agentcore.models.json_decisions``.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentcore.core.text import clip, package_text
from agentcore.models.openai_stream import StreamError, assemble_stream, looks_like_stream

if TYPE_CHECKING:
    from agentcore.models.base import ChatMessage, ToolSpec

_SCHEMA_REJECTION = re.compile(r"response_format|json_schema|grammar", re.IGNORECASE)


class InvalidCompletion(ValueError):
    """A 200 response whose body is not a chat completion; the message says what is missing."""


@dataclass(frozen=True, kw_only=True)
class ParsedCompletion:
    """The parts of a chat completion agentcore uses."""

    content: str | None
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(id, name, raw JSON arguments) per call."""
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    finish_reason: str | None = None
    refusal: str | None = None
    """``message.refusal`` (OpenAI's structured-output refusal), when the server sent one."""


def _prompt(name: str) -> str:
    return package_text("agentcore.models", "prompts", name)


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is localhost or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wire_tools(tools: Iterable[ToolSpec]) -> list[dict[str, Any]]:
    """OpenAI ``tools`` parameter for native function calling."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def json_tools_instructions(tools: Iterable[ToolSpec]) -> str:
    """The system text that asks for a JSON decision object instead of native tool calls."""
    listing = "\n\n".join(
        f"- {t.name}: {t.description}\n  schema: {json.dumps(t.parameters, sort_keys=True)}" for t in tools
    )
    return _prompt("json_tools.md").replace("{{tools}}", listing)


MAX_NOTE_TOOLS = 40
"""Most tools named in the auto-mode note; the rest are counted."""
MAX_NOTE_CHARS = 4000
"""Character budget of the auto-mode note's tool listing."""
MAX_NOTE_ARGS = 12
"""Most argument names listed per tool."""


def _one_line(text: str, limit: int) -> str:
    """The first non-blank line of ``text``, clipped to ``limit`` characters."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    return clip(line, limit, mark="ellipsis")


def _tool_summary(tool: ToolSpec) -> str:
    """``- name(a, b?): first line of the description`` (``?`` marks an optional argument)."""
    params: Mapping[str, Any] = tool.parameters if isinstance(tool.parameters, Mapping) else {}
    found_props, found_required = params.get("properties"), params.get("required")
    props: Mapping[str, Any] = found_props if isinstance(found_props, Mapping) else {}
    required: list[Any] = found_required if isinstance(found_required, list) else []
    names = [_one_line(str(n), 40) + ("" if n in required else "?") for n in props]
    if len(names) > MAX_NOTE_ARGS:
        names = [*names[:MAX_NOTE_ARGS], f"+{len(names) - MAX_NOTE_ARGS} more"]
    summary = f"- {_one_line(tool.name, 64)}({', '.join(names)})"
    description = _one_line(tool.description, 160)
    return f"{summary}: {description}" if description else summary


def auto_tools_note(tools: Sequence[ToolSpec]) -> str:
    """The system note sent with native tools in ``tool_mode="auto"``.

    It names each tool (name, argument names, the first line of its description) and gives the
    JSON fallback format, so a server that drops ``tools`` (llama-server) still leaves the model
    able to call them, and its JSON decision switches the adapter to JSON mode. Bounded: at most
    ``MAX_NOTE_TOOLS`` tools and ``MAX_NOTE_CHARS`` characters of listing; the rest are counted.
    """
    lines: list[str] = []
    used = 0
    for tool in tools[:MAX_NOTE_TOOLS]:
        line = _tool_summary(tool)
        if used + len(line) + 1 > MAX_NOTE_CHARS:
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) < len(tools):
        lines.append(f"- ({len(tools) - len(lines)} more tools not listed here)")
    return _prompt("auto_tools.md").replace("{{tools}}", "\n".join(lines)).strip()


def json_schema_instructions(name: str, schema: Mapping[str, Any]) -> str:
    """The system text that carries a response schema when the server only knows ``json_object``."""
    text = _prompt("json_schema.md").replace("{{name}}", name)
    return text.replace("{{schema}}", json.dumps(schema, indent=2, sort_keys=True))


def wire_messages(messages: Sequence[ChatMessage], *, json_tools: bool) -> list[dict[str, Any]]:
    """Convert messages to OpenAI's wire form.

    With ``json_tools`` the conversation is rewritten for a server without tool support: an
    assistant turn that called tools becomes the JSON decision it stands for, and consecutive tool
    results become one user message (chat templates often demand alternating roles).
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if json_tools and m.role == "tool":
            label = f"Result of tool call {m.tool_call_id}" + (f" ({m.name})" if m.name else "")
            chunk = f"{label}:\n{m.content or ''}"
            if out and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n\n" + chunk
            else:
                out.append({"role": "user", "content": chunk, "_tool_results": True})
            continue
        if json_tools and m.role == "assistant" and m.tool_calls:
            decision = {
                "tool_calls": [{"name": c.name, "arguments": _loads_or_raw(c.arguments)} for c in m.tool_calls],
                "content": m.content,
            }
            out.append({"role": "assistant", "content": json.dumps(decision)})
            continue
        wire: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "tool":
            wire["content"] = m.content or ""
            wire["tool_call_id"] = m.tool_call_id
        if m.tool_calls:
            wire["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ]
        if m.name is not None:
            wire["name"] = m.name
        out.append(wire)
    for wire in out:
        wire.pop("_tool_results", None)
    return out


def with_system_text(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Add ``text`` to the leading system message, or put a new system message first.

    Merging instead of appending a second system message keeps chat templates that accept only one
    system message, and only at the start, working.
    """
    if messages and messages[0]["role"] == "system" and isinstance(messages[0].get("content"), str):
        first = {**messages[0], "content": messages[0]["content"].rstrip() + "\n\n" + text}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _loads_or_raw(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


_MAX_COUNT = 2**63 - 1
"""Largest token count kept: the ``llm_usage`` view casts counts to PostgreSQL ``bigint``."""


def _as_int(value: Any) -> int:
    """A token count as servers send it: an int (kept as sent, even negative: it is then recorded
    unpriced), a whole float (``7.0``) or ASCII digits (``"7"``); anything else (fractions, NaN,
    other text such as ``"²"``, booleans, null, a count beyond a 64-bit integer) counts as 0."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= 30:
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not -_MAX_COUNT <= value <= _MAX_COUNT:
        return 0
    return value


def parse_completion(text: str) -> ParsedCompletion:
    """Read a chat completion body (or a streamed one: server-sent events, see ``openai_stream``).

    Raises:
        InvalidCompletion: the body is not JSON, or not shaped like a chat completion.
    """
    if looks_like_stream(text):  # streamed although no stream was asked for: join the chunks
        try:
            body: Any = assemble_stream(text)
        except StreamError as e:
            raise InvalidCompletion(f"a streamed answer that cannot be read: {e}") from None
    else:
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidCompletion(f"body is not JSON: {text[:120]!r}") from None
    if not isinstance(body, dict):
        raise InvalidCompletion(f"body is JSON {type(body).__name__}, not an object")
    choices = body.get("choices")
    if isinstance(choices, list) and not choices:
        raise InvalidCompletion("'choices' is empty: the server sent no answer")
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise InvalidCompletion(f"no 'choices' list; keys were {clip(', '.join(sorted(map(str, body))), 200)}")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise InvalidCompletion("choices[0] has no 'message' object")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        texts = [p.get("text", "") for p in content if isinstance(p, dict)]
        odd = [t for t in texts if not isinstance(t, str)]
        if odd:
            raise InvalidCompletion(f"a message.content part's text is {type(odd[0]).__name__}, not a string")
        content = "".join(texts) or None
    elif content is not None and not isinstance(content, str):
        raise InvalidCompletion(f"message.content is {type(content).__name__}, not a string")
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise InvalidCompletion(f"message.tool_calls is {type(raw_calls).__name__}, not a list")
    calls: list[tuple[str, str, str]] = []
    for i, call in enumerate(raw_calls, start=1):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidCompletion(f"tool call #{i} has no function name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = call.get("id")
        calls.append((call_id if isinstance(call_id, str) and call_id else f"call_{i}", function["name"], arguments))
    found_usage = body.get("usage")
    usage: dict[str, Any] = found_usage if isinstance(found_usage, dict) else {}
    prompt, completion = _as_int(usage.get("prompt_tokens")), _as_int(usage.get("completion_tokens"))
    total = _as_int(usage.get("total_tokens")) or prompt + completion
    finish = choices[0].get("finish_reason")
    model = body.get("model")
    refusal = message.get("refusal")
    return ParsedCompletion(
        content=content,
        tool_calls=calls,
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total},
        model=model if isinstance(model, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        refusal=refusal if isinstance(refusal, str) and refusal.strip() else None,
    )


def is_schema_rejection(status: int, body_text: str) -> bool:
    """Whether an error answer to a ``json_schema`` request means the server lacks that feature.

    HTTP 400/422/500 whose body names response_format, json_schema or grammar, or any HTTP 500
    (llama-cpp-python crashes with a bare 500 on json_schema requests).
    """
    if status == 500:
        return True
    return status in (400, 422) and bool(_SCHEMA_REJECTION.search(body_text))


def server_message(body: object, fallback: str) -> str:
    """The human message inside an error body (``{"error": {"message": ...}}`` and variants)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:500]
        if isinstance(error, str):
            return error[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback[:500]


def request_error_hint(code: int, *, base_url: str, model: str) -> str:
    """What a refused request (a 4xx that is not retried) means and what to fix."""
    if code in (401, 403):
        return (
            f"the server at {base_url} refused the credentials (HTTP {code}): check OPENAI_API_KEY "
            "(or the api_key argument) and that the key may use this model"
        )
    if code == 404:
        return (
            f"HTTP 404 from {base_url}/chat/completions: the model name {model!r} or the "
            f"base URL {base_url!r} is wrong; check AGENTCORE_MODEL/OPENAI_MODEL (or model=) and "
            "OPENAI_BASE_URL (or base_url=, usually ending in /v1)"
        )
    return f"the server rejected the request (HTTP {code}); fix the request or the model settings"


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP-date), or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
