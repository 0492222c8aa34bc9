"""Chat models for tests and examples: a strict script, and a function.

``ScriptedChatModel`` answers each call with the next scripted item and fails loudly on a call the
script did not expect, or (with ``assert_consumed`` or ``with``) when scripted answers were left
unused. Build answers with ``say``, ``call``, ``calls`` and ``respond_json``::

    model = ScriptedChatModel([call("search", q="x"), say("done")])

Tool call ids in these helpers are numbered per response (``call_1``, ``call_2``...), like the
JSON tool mode of ``OpenAIChatModel``: ids are unique within one response only.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeAlias

from agentcore.core.text import clip
from agentcore.core.values import TokenUsage
from agentcore.errors import ModelError
from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest

__all__ = ("FunctionChatModel", "ScriptedChatModel", "call", "calls", "respond_json", "say")

ScriptItem: TypeAlias = "ChatResponse | Callable[[ChatRequest], ChatResponse | Awaitable[ChatResponse]] | BaseException"


def say(text: str, usage: TokenUsage | None = None) -> ChatResponse:
    """A plain text answer."""
    return ChatResponse(content=text, usage=usage or TokenUsage(), finish_reason="stop")


def call(name: str, /, **arguments: Any) -> ChatResponse:
    """An answer with one tool call (id ``call_1``) to ``name`` with ``arguments``."""
    return calls((name, arguments))


def calls(*requested: tuple[str, dict[str, Any]]) -> ChatResponse:
    """An answer with several tool calls, given as ``(name, arguments)`` pairs (ids ``call_1``...)."""
    return ChatResponse(
        content=None,
        tool_calls=tuple(
            ToolCallRequest(id=f"call_{i}", name=name, arguments=json.dumps(args))
            for i, (name, args) in enumerate(requested, start=1)
        ),
        finish_reason="tool_calls",
    )


def respond_json(obj: Any) -> ChatResponse:
    """An answer whose content is ``json.dumps(obj)`` (for processor/planner schema requests)."""
    return ChatResponse(content=json.dumps(obj), finish_reason="stop")


def _describe_request(request: ChatRequest) -> str:
    last = request.messages[-1] if request.messages else None
    text = clip(last.content or "", 200, mark="ellipsis") if last else ""
    where = f"{last.role} message {text!r}" if last else "no messages"
    return f"role={request.role}, {len(request.messages)} messages, last: {where}"


def _describe_item(item: ScriptItem) -> str:
    if isinstance(item, ChatResponse):
        if item.tool_calls:
            return "tool calls " + ", ".join(f"{c.name}({c.arguments})" for c in item.tool_calls)
        return clip(f"content {item.content!r}", 200, mark="ellipsis")
    if isinstance(item, BaseException):
        return f"raise {type(item).__name__}({item})"
    return f"callable {getattr(item, '__name__', repr(item))}"


class ScriptedChatModel:
    """A chat model that plays a fixed script of answers, one per call, and records the requests.

    Args:
        responses: For each expected call: a ``ChatResponse``, a callable that builds one from the
            request, or an exception to raise (to script faults).
        name: The model's name.
    """

    __test__ = False

    def __init__(self, responses: Iterable[ScriptItem], name: str = "scripted") -> None:
        self.name = name
        self.requests: list[ChatRequest] = []
        self._script: list[ScriptItem] = list(responses)
        self._next = 0

    def __repr__(self) -> str:
        return f"ScriptedChatModel(name={self.name!r}, used={self._next}/{len(self._script)})"

    @property
    def remaining(self) -> int:
        """How many scripted answers are not yet used."""
        return len(self._script) - self._next

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Return (or raise) the next scripted item.

        Raises:
            ModelError: the script is used up, or a scripted callable returned no ``ChatResponse``.
        """
        self.requests.append(request)
        number = len(self.requests)
        if self._next >= len(self._script):
            raise ModelError(
                f"ScriptedChatModel {self.name!r}: unexpected call #{number} (script has "
                f"{len(self._script)} responses); last request: {_describe_request(request)}"
            )
        item = self._script[self._next]
        self._next += 1
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, ChatResponse):
            return item
        return await _answer(
            item,
            request,
            lambda got: f"ScriptedChatModel {self.name!r}: the callable for call #{number} returned {got}",
        )

    def assert_consumed(self) -> None:
        """Fail if some scripted answers were never requested.

        Raises:
            AssertionError: listing each unused answer.
        """
        if self._next < len(self._script):
            unused = "; ".join(
                f"#{i + 1}: {_describe_item(item)}" for i, item in enumerate(self._script) if i >= self._next
            )
            raise AssertionError(
                f"ScriptedChatModel {self.name!r}: {self.remaining} of {len(self._script)} scripted "
                f"responses were never requested ({len(self.requests)} calls made): {unused}"
            )

    def __enter__(self) -> ScriptedChatModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:  # do not hide the error that ended the block
            self.assert_consumed()


class FunctionChatModel:
    """A chat model whose answers come from a function of the request (sync or async).

    Args:
        fn: Builds the answer to each request.
        name: The model's name.
    """

    __test__ = False

    def __init__(
        self,
        fn: Callable[[ChatRequest], ChatResponse | Awaitable[ChatResponse]],
        name: str = "function",
    ) -> None:
        self.name = name
        self.fn = fn
        self.requests: list[ChatRequest] = []

    def __repr__(self) -> str:
        return f"FunctionChatModel(name={self.name!r}, calls={len(self.requests)})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Record ``request`` and return ``fn(request)``, awaited if needed.

        Raises:
            ModelError: ``fn`` returned something other than a ``ChatResponse``.
        """
        self.requests.append(request)
        number = len(self.requests)
        return await _answer(
            self.fn, request, lambda got: f"FunctionChatModel {self.name!r}: fn returned {got} for call #{number}"
        )


async def _answer(fn: Callable[[ChatRequest], Any], request: ChatRequest, wrong: Callable[[str], str]) -> ChatResponse:
    """``fn(request)``, awaited if needed.

    Raises:
        ModelError: it is not a ``ChatResponse``; the message is ``wrong(its type name)`` plus what
            was expected.
    """
    result: Any = fn(request)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, ChatResponse):
        raise ModelError(f"{wrong(type(result).__name__)}, expected a ChatResponse")
    return result
