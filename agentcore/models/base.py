"""Talking to chat models: the value types and the ``ChatModel`` protocol.

Requests and responses are frozen pydantic values so they can be recorded, hashed
(``request_digest``) and replayed. ``OpenAIChatModel`` (``agentcore.models.openai``) is the adapter
for OpenAI-compatible servers; ``agentcore.models.scripted`` and ``agentcore.models.offline`` need
no server.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, JsonValue, field_validator, model_validator

from agentcore.core.json_text import repair_text
from agentcore.core.values import FROZEN, Role, TokenUsage, canonical_json, sha256_id

__all__ = (
    "ChatMessage",
    "ChatModel",
    "ClosableChatModel",
    "ChatRequest",
    "ChatResponse",
    "Redacting",
    "StructuredMode",
    "ToolCallRequest",
    "ToolSpec",
    "request_body",
    "request_digest",
)

StructuredMode = Literal["native_tools", "json_decision", "json_schema", "json_object", "text"]


class _Value(BaseModel):
    model_config = FROZEN


class ToolCallRequest(_Value):
    """One tool call the model asked for."""

    id: str
    """The call id, unique within one response (servers and JSON mode number them call_1, ...)."""
    name: str
    arguments: str
    """The raw JSON text the model produced; it may be invalid JSON, callers validate it."""

    @field_validator("id", "name", "arguments")
    @classmethod
    def _encodable(cls, value: str) -> str:
        return repair_text(value)  # a lone surrogate from a model becomes U+FFFD: every answer can be stored


class ChatMessage(_Value):
    """One message of a conversation."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: tuple[ToolCallRequest, ...] = ()
    """Calls made by an assistant message."""
    tool_call_id: str | None = None
    """For role "tool": the id of the call this message answers."""
    name: str | None = None

    @model_validator(mode="after")
    def _check_tool_fields(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs tool_call_id (the id of the call it answers)")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not role {self.role!r}")
        return self


class ToolSpec(_Value):
    """A tool offered to the model."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""


class ChatRequest(_Value):
    """Everything a chat model needs for one call; hashed by ``request_digest`` for replay."""

    role: Role
    """Which agentcore role is asking; recorded, not sent."""
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    """What the role put into the prompt, as structured JSON; recorded (and part of the digest),
    never sent. Rule-based and test models read this instead of parsing prompt text. Keys by role:

    - controller: ``task`` (str), ``facts`` (list of ``{key, value, source, artifact_id}``, the ones
      shown, newest last; a value the prompt clips holds the characters shown and ``cut``, how many
      are not), ``plan`` (list of ``{id, status, description, after}``), ``questions``
      (list of ``{id, text}``, open ones), ``recent`` (list of ``{call_id, tool, ok, artifact_id}``);
    - processor: ``input`` (``"tool_result"`` or ``"user_answer"``); for a tool result ``call_id``,
      ``tool``, ``arguments`` (object or null), ``ok``, ``artifact`` (id or null), ``error`` (str or
      null) and ``payload`` (the text shown); for an answer ``question`` and ``answer``;
    - planner: ``task`` and ``tools`` (the names steps may call).
    """
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    """Tools the model may call (controller); mutually exclusive with ``response_schema``."""
    response_schema: dict[str, Any] | None = None
    """JSON schema the answer's content must follow (processor, planner)."""
    schema_name: str = "response"
    temperature: float | None = None
    max_tokens: int | None = None


class ChatResponse(_Value):
    """A model's answer."""

    content: str | None
    """The text (for schema requests: the JSON text, fences stripped; callers validate it)."""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    usage: TokenUsage = TokenUsage()
    model: str = ""
    finish_reason: str | None = None
    attempts: int = Field(default=1, ge=1)
    """HTTP attempts used, retries and fallbacks included."""
    structured_mode: StructuredMode | None = None
    """How the output was obtained: native_tools, json_decision, json_schema, json_object or text."""
    problem: str | None = None
    """Why this answer cannot be used, when the model adapter found it so (a malformed JSON tool
    decision, a body that is no chat completion, a refusal); written for the model. The roles refuse
    an answer with a ``problem`` with exactly this reason, so a recorded one replays the same way."""

    @field_validator("content", "model", "finish_reason", "problem")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        """Lone surrogates (half an emoji) become U+FFFD, so every answer encodes as UTF-8 and can be stored."""
        return repair_text(value) if value is not None else None


_last_body: tuple[ChatRequest | None, str] = (None, "")
"""The last request ``request_body`` serialised and its text: a replayed call is looked up by its
digest and then recorded, and both need the same text."""


def request_body(request: ChatRequest) -> str:
    """The canonical JSON text of ``request``: what a run records, and what ``request_digest`` hashes.

    Requests are frozen, so the text of the request serialised last is kept (by identity) and
    reused when the same object is asked for again.
    """
    global _last_body
    last, text = _last_body
    if last is not request:
        text = canonical_json(request.model_dump(mode="json"))
        _last_body = (request, text)
    return text


def request_digest(request: ChatRequest, body: str | None = None) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of ``request``; the key of recorded responses.

    Args:
        body: ``request_body(request)`` when the caller already has it (saves dumping it again).
    """
    return sha256_id((body if body is not None else request_body(request)).encode("utf-8"))


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat requests: ``OpenAIChatModel``, scripted and replay models.

    A model that holds connections may also have ``async def aclose()`` (see ``ClosableChatModel``);
    ``Agent`` calls it at the end of each ``*_sync`` call.
    """

    @property
    def name(self) -> str:
        """The model name recorded on ``LLMCalled`` events."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request.

        Raises:
            ModelError: (or a subclass) when no usable answer came back.
        """
        ...


@runtime_checkable
class ClosableChatModel(ChatModel, Protocol):
    """A ``ChatModel`` with connections to close in the running event loop."""

    async def aclose(self) -> None:
        """Close what the model opened in the running loop; the model stays usable."""
        ...


@runtime_checkable
class Redacting(Protocol):
    """A model that holds a secret (an API key) that must never be recorded or shown.

    ``Agent`` and ``PlanRunner`` pass every event, request body and tool output of a run through
    the ``redact`` of each such model before it is stored.
    """

    def redact(self, text: str) -> str:
        """``text`` with the secret replaced (``[redacted]``)."""
        ...
