"""Tools: ``@tool`` turns a typed function into a ``Tool``; ``ToolRunner`` runs tool calls.

A tool's parameters, their types and defaults come from its signature; its description and each
parameter's description come from its Google-style docstring. The runner validates the arguments
the model sent, runs the tool (sync tools in a thread) under a timeout, stores the raw output once as
a content-addressed artifact and returns a ``ToolResult`` whose ``payload`` stays short however big
the output is (see ``agentcore.tools.payloads``). Nothing a tool does crashes the runner: ``ToolError``
is a message for the model, any other exception is recorded as a failure.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, overload

from pydantic import BaseModel

from agentcore.core.events import ArtifactRef, ToolFinished
from agentcore.errors import ConfigError
from agentcore.models.base import ToolSpec
from agentcore.storage.artifacts import ArtifactStore
from agentcore.tools.signature import arguments_model, arguments_schema, parse_docstring

__all__ = ("ResultKind", "Tool", "ToolContext", "ToolOutput", "ToolResult", "as_tool_spec", "tool")

ResultKind = Literal["ok", "validation", "unknown_tool", "tool_error", "timeout", "error"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What the runner passes to a tool that declares a ``ToolContext`` parameter."""

    call_id: str
    tool: str
    idempotency_key: str | None
    """``run_id/step_id/attempt`` when the runtime gave one: the same key on a retried call, so the
    tool can skip side effects it already made."""
    artifacts: ArtifactStore
    payload_chars: int
    """The runner's payload bound, for tools that write their own ``ToolOutput``."""


@dataclass(frozen=True, kw_only=True)
class ToolOutput:
    """A payload a tool wrote itself: returned as is (bounded), and nothing new is stored.

    For tools whose output already is an artifact (``read_artifact``) or that point at one.
    """

    text: str
    artifact: ArtifactRef | None = None
    note: str = ""
    """A line appended after ``text`` (e.g. where to continue), within ``PAYLOAD_NOTE_CHARS``."""


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The outcome of one tool call."""

    call_id: str
    name: str
    ok: bool
    payload: str
    """The short text the controller sees (the error message when ``ok`` is false)."""
    artifact: ArtifactRef | None = None
    """The raw output, stored whole."""
    error: str | None = None
    kind: ResultKind = "ok"
    """``ok``, or why not: ``validation``, ``unknown_tool``, ``tool_error``, ``timeout``, ``error``."""
    exception: type[BaseException] | None = None
    """For kind ``error``: the class of the exception the tool raised (so callers classify the
    failure from its type, never from the message text)."""
    duration_ms: float = 0.0
    output_size: int = 0
    """Bytes of the raw output."""

    def to_event(
        self, *, run_id: str, seq: int, at: datetime, caused_by: int | None = None, step_id: str | None = None
    ) -> ToolFinished:
        """The ``ToolFinished`` event recording this result."""
        return ToolFinished(
            run_id=run_id, seq=seq, at=at, caused_by=caused_by, call_id=self.call_id, name=self.name,
            ok=self.ok, payload=self.payload, artifact=self.artifact, error=self.error,
            duration_ms=self.duration_ms, step_id=step_id,
        )  # fmt: skip


def call_idempotency_key(run_id: str, call_id: str, step_id: str | None = None) -> str:
    """The key of one tool call: ``run_id/step_id/call_id`` (``main`` for calls outside a plan step).

    The same on every retry of that call (after a crash, resume re-runs the call with this key).
    Idempotency keys have one format, ``<run_id>/<step_id or main>/<call_id or attempt>``.
    """
    return f"{run_id}/{step_id or 'main'}/{call_id}"


def step_idempotency_key(run_id: str, step_id: str, attempt: int) -> str:
    """The key of one attempt of a plan step: ``run_id/step_id/attempt`` (attempts count from 1).

    Each attempt has its own key; dedupe on ``run_id/step_id`` to do a step's work once.
    """
    return f"{run_id}/{step_id}/{attempt}"


@dataclass(frozen=True, kw_only=True, eq=False)
class Tool:
    """A function the model can call, with the JSON schema of its arguments.

    Build one with ``@tool``. Calling a ``Tool`` calls the function itself.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    fn: Callable[..., Any] = field(repr=False)
    args_model: type[BaseModel] = field(repr=False)
    timeout: float | None = 30.0
    summarize: Callable[[Any], str] | None = field(default=None, repr=False)
    top_k: int | None = None
    is_async: bool = False
    context_params: tuple[str, ...] = ()
    """Parameters filled by the runner: a ``ToolContext`` or the ``idempotency_key``."""
    field_params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(model field, function parameter) pairs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        """``{name, description, parameters}``: what a model is shown of this tool."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the model's arguments into keyword arguments for the function.

        Raises:
            pydantic.ValidationError: the arguments do not fit the parameters.
        """
        model = self.args_model.model_validate(arguments)
        return {param: getattr(model, name) for name, param in self.field_params}

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = 30.0,
        summarize: Callable[[Any], str] | None = None,
        top_k: int | None = None,
    ) -> Tool:
        """Build a tool from a typed function (what ``@tool`` does).

        Raises:
            ConfigError: a parameter has no type hint or a type pydantic cannot validate, the
                name is not ``[A-Za-z0-9_-]{1,64}``, the docstring documents a parameter that does
                not exist, or a setting is out of range.
        """
        if not callable(fn):
            raise ConfigError(f"@tool decorates a function, got {type(fn).__name__}")
        tool_name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(tool_name, str) or not _NAME.match(tool_name):
            raise ConfigError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'; pass name=...")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"tool {tool_name!r}: timeout must be > 0 seconds or None, got {timeout!r}")
        if top_k is not None and top_k < 1:
            raise ConfigError(f"tool {tool_name!r}: top_k must be >= 1, got {top_k}")
        if inspect.isasyncgenfunction(fn):
            raise ConfigError(f"tool {tool_name!r} is an async generator; return a list instead")
        summary, schema, model, field_params, context_params = _described(fn, tool_name)
        call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects count too
        return cls(
            name=tool_name, description=description if description is not None else summary, parameters=schema,
            fn=fn, args_model=model, timeout=timeout, summarize=summarize, top_k=top_k,
            is_async=inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call),
            context_params=context_params, field_params=field_params,
        )  # fmt: skip


_Described = tuple[str, dict[str, Any], type[BaseModel], tuple[tuple[str, str], ...], tuple[str, ...]]
_DESCRIBED: dict[tuple[Any, str], tuple[tuple[Any, ...], _Described]] = {}
"""``from_function``'s work per (code object, tool name): a factory that defines its tools inside
(a closure per run, as a worker's app does) gets the same arguments model and schema each time
instead of parsing the signature and docstring and building a pydantic model again (~1 ms)."""


def _described(fn: Callable[..., Any], tool_name: str) -> _Described:
    """Summary, JSON schema (a fresh copy), arguments model, field and context parameters of ``fn``.

    Cached only for plain functions (not wrapped, no ``__signature__``), and only while the parts
    the result is built from (defaults, annotations, docstring, module globals) are the same."""
    plain = inspect.isfunction(fn) and not hasattr(fn, "__wrapped__") and not hasattr(fn, "__signature__")
    key = (fn.__code__, tool_name) if plain else None
    parts = (fn.__defaults__, fn.__kwdefaults__, fn.__annotations__, fn.__doc__, id(fn.__globals__)) if plain else ()
    hit = _DESCRIBED.get(key) if key is not None else None
    if hit is not None:
        try:
            same = hit[0] == parts
        except Exception:  # a default that cannot be compared: build again
            same = False
        if same:
            summary, schema, model, field_params, context_params = hit[1]
            return summary, copy.deepcopy(schema), model, field_params, context_params
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    model, field_params, context_params = arguments_model(fn, tool_name, arg_docs, ToolContext)
    try:
        schema = arguments_schema(model)
    except Exception as e:
        raise ConfigError(f"tool {tool_name!r}: cannot build the JSON schema of its parameters: {e}") from e
    schema.setdefault("properties", {})
    if key is not None:
        try:
            kept = copy.deepcopy(parts)  # a default mutated later must not look unchanged
        except Exception:  # a default that cannot be copied: not cached
            return summary, schema, model, field_params, context_params
        if len(_DESCRIBED) >= 512:
            _DESCRIBED.clear()
        _DESCRIBED[key] = (kept, (summary, copy.deepcopy(schema), model, field_params, context_params))
    return summary, schema, model, field_params, context_params


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    summarize: Callable[[Any], str] | None = None,
    top_k: int | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    summarize: Callable[[Any], str] | None = None,
    top_k: int | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function (sync or async) a ``Tool``; use bare (``@tool``) or with options.

    Every parameter needs a type hint. A parameter named ``idempotency_key`` or typed
    ``ToolContext`` is not shown to the model: the runner fills it.

    Args:
        fn: The function, when used bare.
        name: The tool's name; the function's name by default.
        description: What the tool does; the docstring's first paragraph by default.
        timeout: Seconds before the call is abandoned (``None``: no limit). A sync tool runs in a
            worker thread that cannot be killed: on timeout the runner stops waiting for it, but the
            thread runs on until the function returns.
        summarize: ``summarize(output) -> str`` writes the payload the model sees.
        top_k: How many items of a list output the payload shows (the runner's default if None).

    Raises:
        ConfigError: see ``Tool.from_function``.
    """

    def build(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f, name=name, description=description, timeout=timeout, summarize=summarize, top_k=top_k
        )

    return build if fn is None else build(fn)


def as_tool_spec(tool: Any) -> ToolSpec:
    """A ``ToolSpec`` from a ``ToolSpec``, a ``Tool`` (anything with ``.spec()``) or a spec dict.

    Raises:
        ConfigError: ``tool`` is none of these.
    """
    if isinstance(tool, ToolSpec):
        return tool
    spec = getattr(tool, "spec", None)
    if callable(spec):
        return as_tool_spec(spec())
    if isinstance(tool, Mapping):
        fn = tool.get("function") if tool.get("type") == "function" else tool
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return ToolSpec(
                name=fn["name"],
                description=str(fn.get("description") or ""),
                parameters=dict(fn.get("parameters") or {"type": "object", "properties": {}}),
            )
    if all(hasattr(tool, a) for a in ("name", "description", "parameters")):
        return ToolSpec(name=tool.name, description=tool.description, parameters=dict(tool.parameters))
    raise ConfigError(
        f"cannot use {tool!r} as a tool spec: pass a Tool, a ToolSpec or a dict with name, description, parameters"
    )
