"""Reading a chat completion a server streamed although no stream was asked for.

Some OpenAI-compatible servers and proxies answer every request as server-sent events
(``data: {chunk}`` lines ending in ``data: [DONE]``), ``stream: false`` or not. Such a body is not
a completion, and retrying cannot help: the same server streams again. ``assemble_stream`` joins
the chunks into the completion they stand for (content, refusal and tool-call deltas
concatenated, the last finish reason, model and usage), so ``parse_completion`` reads it like any
other. No I/O.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ("assemble_stream", "looks_like_stream")


class StreamError(ValueError):
    """A streamed body that does not add up to a completion; the message says why."""


def looks_like_stream(text: str) -> bool:
    """Whether ``text`` is a server-sent-events body (its first line is ``data:``, ``event:`` or a comment)."""
    head = text.lstrip()[:6]
    return head.startswith(("data:", "event:", ":"))


def _chunks(text: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON chunks of the ``data:`` lines, and whether ``[DONE]`` closed the stream."""
    chunks: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue  # event names, comments, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return chunks, True
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise StreamError(f"a streamed chunk is not JSON: {data[:120]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"a streamed chunk is JSON {type(chunk).__name__}, not an object")
        if "error" in chunk:
            error = chunk["error"]
            said = error.get("message") if isinstance(error, dict) else error
            raise StreamError(f"the stream carried an error: {str(said)[:300]}")
        chunks.append(chunk)
    return chunks, False


def _add_tool_delta(calls: dict[int, dict[str, Any]], delta: Any) -> None:
    if not isinstance(delta, dict):
        raise StreamError("a streamed tool-call delta is not an object")
    index = delta.get("index", len(calls))
    if not isinstance(index, int) or isinstance(index, bool):
        raise StreamError(f"a streamed tool-call delta has index {index!r}, not an integer")
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    if isinstance(delta.get("id"), str) and delta["id"]:
        call["id"] = delta["id"]
    function = delta.get("function")
    if isinstance(function, dict):
        for part in ("name", "arguments"):
            if isinstance(function.get(part), str):
                call["function"][part] += function[part]


def assemble_stream(text: str) -> dict[str, Any]:
    """The completion body a streamed ``text`` stands for.

    Raises:
        StreamError: a chunk is not a JSON object, the stream carried an error, or it ended before
            any chunk said why it finished (a stream cut off; there is no ``[DONE]`` either).
    """
    chunks, done = _chunks(text)
    content: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    body: dict[str, Any] = {"object": "chat.completion"}
    for chunk in chunks:
        for key in ("id", "model", "created"):
            if key in chunk:
                body[key] = chunk[key]
        if isinstance(chunk.get("usage"), dict):
            body["usage"] = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            continue
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # only the first choice is used, as for a plain completion
            found = choice.get("delta")
            delta: dict[str, Any] = found if isinstance(found, dict) else {}
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                refusal.append(delta["refusal"])
            for tool_delta in delta.get("tool_calls") or []:
                _add_tool_delta(calls, tool_delta)
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
    if finish is None and not done:
        raise StreamError(f"the stream stopped after {len(chunks)} chunks without a finish reason or [DONE]")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) if content else None}
    if refusal:
        message["refusal"] = "".join(refusal)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    body["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    return body
