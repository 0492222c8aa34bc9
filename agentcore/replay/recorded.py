"""Record/replay models and tools: answer a re-run from a trace instead of live models and tools.

- ``RecordedModels`` holds every ``LLMCalled`` of a trace keyed by ``(role, request digest)``. A
  ``ReplayChatModel`` answers a request with the recorded response for the same digest; a request
  that was never recorded raises ``ReplayMismatch`` naming where the replay is and the digest (never a
  made-up answer). With ``by_order=True`` (counterfactual replay) an unrecorded request gets the
  role's next unused recorded response instead, and the loose match is noted. Unused recorded
  responses are listed by ``unused()``.
- A recorded failure is raised again: as ``ModelOutputError`` when the run retried the call (an
  unusable answer), else as ``ModelUnavailable`` (a failure that ended the turn).
- ``ReplayToolRunner`` answers each tool call with the recorded ``ToolFinished`` for the same call
  id, name and arguments; ``recorded_tools`` rebuilds stand-ins of the run's tools from the specs
  in its recorded controller requests, so a trace replays without the original application code.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentcore.core.events import Event, LLMCalled, Role, RunFinished, RunStarted, ToolCall, ToolFinished, ToolStarted
from agentcore.errors import ModelOutputError, ModelUnavailable, ReplayMismatch, RunNotFound, TraceError
from agentcore.models.base import ChatModel, ChatRequest, ChatResponse, ToolCallRequest, ToolSpec, request_digest
from agentcore.storage.artifacts import ArtifactStore
from agentcore.storage.base import EventStore
from agentcore.storage.trace import Trace
from agentcore.tools.base import Tool, ToolResult
from agentcore.tools.runner import ToolRunner

__all__ = ("RecordedModels", "ReplayChatModel", "ReplaySetup", "ReplayToolRunner", "recorded_tools", "stub_tool")

_LIVE_FLAGS = {"controller": "--model NAME", "processor": "--processor-model NAME", "planner": "--planner-model NAME"}
"""The ``agentcore replay`` option that makes each role live (named in mismatch hints)."""


@dataclass(kw_only=True)
class _Recorded:
    seq: int
    role: str
    model: str
    digest: str
    response: ChatResponse | None
    error: str | None
    then_retried: bool
    """The next model call of the run is this role's next attempt (so a failure here was not fatal)."""
    used: bool = False


def _response_of(event: LLMCalled) -> ChatResponse | None:
    """The model answer recorded in ``event``, rebuilt to be given again.

    Raises:
        TraceError: the recorded response is not a model answer (a trace edited by hand: the event
            itself validates, its ``response`` is a free-form dict).
    """
    if not event.response:
        return None
    try:
        body = {k: v for k, v in event.response.items() if k in ChatResponse.model_fields and k != "usage"}
        body.setdefault("content", None)
        body["tool_calls"] = tuple(ToolCallRequest(**c) for c in body.get("tool_calls") or ())
        return ChatResponse(**body, usage=event.usage)
    except (ValidationError, TypeError, AttributeError) as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise TraceError(
            f"the model call recorded at seq {event.seq} has a response that is not a model answer ({detail}); "
            "the trace was edited or damaged: re-export the run"
        ) from None


def _first_unused(calls: deque[_Recorded] | None) -> _Recorded | None:
    """The first call of ``calls`` not used yet (used ones are dropped from the front)."""
    while calls and calls[0].used:
        calls.popleft()
    return calls[0] if calls else None


class RecordedModels:
    """The model calls of a trace, to be answered again by ``ReplayChatModel``s.

    Args:
        events: The recorded run's events.
    """

    def __init__(self, events: Sequence[Event]) -> None:
        calls = [e for e in events if isinstance(e, (LLMCalled, RunFinished))]
        self.calls: list[_Recorded] = []
        for i, e in enumerate(calls):
            if not isinstance(e, LLMCalled):
                continue
            nxt = calls[i + 1] if i + 1 < len(calls) else None
            retried = isinstance(nxt, LLMCalled) and nxt.role == e.role and nxt.attempt == e.attempt + 1
            self.calls.append(
                _Recorded(
                    seq=e.seq, role=e.role, model=e.model, digest=e.request_digest, response=_response_of(e),
                    error=e.error, then_retried=retried,
                )
            )  # fmt: skip
        self._by_digest: dict[tuple[str, str], deque[_Recorded]] = defaultdict(deque)
        self._by_role: dict[str, deque[_Recorded]] = defaultdict(deque)
        for c in self.calls:  # in recorded order: each lookup takes the first unused one
            self._by_digest[c.role, c.digest].append(c)
            self._by_role[c.role].append(c)
        self.mismatches: list[str] = []
        """Every ``ReplayMismatch`` message raised (also those the agent caught)."""
        self.loose: list[dict[str, Any]] = []
        """Calls answered by recorded order, not by digest (counterfactual replay only)."""

    def name_of(self, role: str, default: str = "replay") -> str:
        """The model name recorded for ``role`` (so a replayed ``RunStarted.config`` matches)."""
        return next((c.model for c in self.calls if c.role == role), default)

    def model(
        self, role: str, *, by_order: bool = False, name: str | None = None, where: Callable[[], str] | None = None
    ) -> ReplayChatModel:
        """A chat model answering ``role``'s requests from the recording.

        Args:
            role: ``controller``, ``processor`` or ``planner``.
            by_order: When a digest is not recorded, answer with the role's next unused recorded
                response instead of raising (for counterfactual replay).
            name: The model's name (default: the recorded one).
            where: Says where the replay is (``"after seq 12"``), for error messages.
        """
        return ReplayChatModel(self, role, by_order=by_order, name=name or self.name_of(role), where=where)

    def unused(self, roles: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Recorded calls no replayed request asked for: ``{seq, role, digest}`` each."""
        return [
            {"seq": c.seq, "role": c.role, "digest": c.digest}
            for c in self.calls
            if not c.used and (roles is None or c.role in roles)
        ]

    def take(self, request: ChatRequest, *, by_order: bool, where: str) -> _Recorded:
        """The recorded call answering ``request``; marks it used.

        Raises:
            ReplayMismatch: the request's digest was not recorded (and ``by_order`` found nothing).
        """
        digest = request_digest(request)
        found = _first_unused(self._by_digest.get((request.role, digest)))
        if found is not None:
            found.used = True
            return found
        pending = _first_unused(self._by_role.get(request.role))
        if by_order and pending is not None:
            pending.used = True
            self.loose.append({"seq": pending.seq, "role": pending.role, "recorded": pending.digest, "asked": digest})
            return pending
        hint = (
            f"the trace's next unused {request.role} call is seq {pending.seq} (request {pending.digest}), so the "
            "request changed (prompt, tools or state)"
            if pending is not None
            else f"the trace has no {request.role} call left"
        )
        message = (
            f"{request.role} call {where}: no recorded response for request {digest}; {hint}. "
            f"Re-run with a live model (`agentcore replay TRACE {_LIVE_FLAGS.get(request.role, '--model NAME')}`, "
            "or `live=` from Python) or re-record the trace"
        )
        self.mismatches.append(message)
        raise ReplayMismatch(message)


@dataclass(frozen=True, kw_only=True)
class ReplaySetup:
    """One replay under way: the trace, the new run it writes, and which roles and tools answer live."""

    trace: Trace
    started: RunStarted
    """The trace's ``RunStarted`` (task, plan, recorded set-up)."""
    run_id: str
    """The replay's own run in ``store``."""
    store: EventStore
    recorded: RecordedModels
    live: Mapping[str, ChatModel]
    """Roles answered by a live model instead of the recording."""
    tools: Sequence[Tool] | None
    """The real tools (``None``: stand-ins rebuilt from the trace)."""
    live_tools: bool

    def model(self, role: Role) -> ChatModel:
        """``role``'s model: the live one when given, else the recording (by digest; falling back
        to the recorded order when any role is live, since the run then moves away from the trace)."""
        if role in self.live:
            return self.live[role]
        name = self.started.run_config().model_name(role) or None
        return self.recorded.model(role, by_order=bool(self.live), name=name, where=self.where)

    def where(self) -> str:
        """Where the replay is (``"after seq 12"``), for mismatch messages."""
        try:
            return f"after seq {self.store.last_seq(self.run_id)}"
        except RunNotFound:
            return "before the run started"


class ReplayChatModel:
    """A ``ChatModel`` that answers from a recording (see ``RecordedModels.model``)."""

    def __init__(
        self,
        recorded: RecordedModels,
        role: str,
        *,
        by_order: bool = False,
        name: str = "replay",
        where: Callable[[], str] | None = None,
    ) -> None:
        self.recorded = recorded
        self.role = role
        self.by_order = by_order
        self.name = name
        self._where = where or (lambda: "in replay")

    def __repr__(self) -> str:
        return f"ReplayChatModel(role={self.role!r}, name={self.name!r}, by_order={self.by_order})"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The recorded response to ``request`` (or the recorded failure, raised again).

        Raises:
            ReplayMismatch: the request was not recorded.
            ModelOutputError, ModelUnavailable: the recorded call failed this way.
        """
        c = self.recorded.take(request, by_order=self.by_order, where=self._where())
        if c.response is not None:
            return c.response
        message = c.error or "the recorded call failed (no message recorded)"
        # a failure followed by another attempt was an unusable answer; otherwise it ended the turn
        raise ModelOutputError(message) if c.then_retried else ModelUnavailable(message)


# --------------------------------------------------------------------------------------------
# tools


class _AnyArguments(BaseModel):
    model_config = ConfigDict(extra="allow")


def _not_recorded(**_: Any) -> str:  # pragma: no cover - ReplayToolRunner answers before any tool runs
    raise ReplayMismatch("a recorded tool stub was executed; replay tools through ReplayToolRunner")


def recorded_tools(trace: Trace) -> list[Tool]:
    """Stand-ins for the run's tools, rebuilt from the specs in its recorded controller requests.

    They carry the same name, description and parameters, so replayed requests (and their digests)
    match without the original tool code; they cannot run (``ReplayToolRunner`` answers for them).
    The built-in ``read_artifact`` and ``ask_user`` are left out: the runtime adds them itself.
    """
    for e in trace.events:
        if isinstance(e, LLMCalled) and e.role == "controller" and e.request_artifact is not None:
            art = trace.artifacts.get(e.request_artifact.id)
            if art is None:
                continue
            request = ChatRequest.model_validate_json(art.data)
            return [stub_tool(s) for s in request.tools if s.name not in ("read_artifact", "ask_user")]
    return []


def stub_tool(spec: ToolSpec | None, *, name: str = "") -> Tool:
    """A tool that only carries a recorded spec (or just ``name``); it cannot run."""
    return Tool(
        name=spec.name if spec is not None else name,
        description=spec.description if spec is not None else "",
        parameters=dict(spec.parameters) if spec is not None else {"type": "object", "properties": {}},
        fn=_not_recorded,
        args_model=_AnyArguments,
    )


class ReplayToolRunner(ToolRunner):
    """A ``ToolRunner`` that returns recorded results instead of running tools.

    Args:
        tools: The agent's tools (their specs are what the model is shown; none of them runs).
        artifacts: The store holding the recorded outputs.
        events: The recorded run's events.
        payload_chars: As recorded (``RunStarted.config["payload_chars"]``).
        mismatches: Where to append each mismatch message (also raised as ``ReplayMismatch``).
    """

    def __init__(
        self,
        tools: Sequence[Tool],
        artifacts: ArtifactStore,
        events: Sequence[Event],
        *,
        payload_chars: int = 2000,
        mismatches: list[str] | None = None,
    ) -> None:
        super().__init__(tools, artifacts, payload_chars=payload_chars)
        self._started = {e.call.id: e for e in events if isinstance(e, ToolStarted)}
        self._finished = {e.call_id: e for e in events if isinstance(e, ToolFinished)}
        self.mismatches = mismatches if mismatches is not None else []
        self.answered: list[str] = []

    async def run(self, call: ToolCall, *, idempotency_key: str | None = None) -> ToolResult:
        """The recorded result of ``call``.

        Raises:
            ReplayMismatch: the trace has no result for this call id, or it was made with another
                tool or other arguments.
        """
        started, finished = self._started.get(call.id), self._finished.get(call.id)
        problem = None
        if finished is None:
            problem = "the trace has no result for it"
        elif started is not None and (started.call.name, started.call.arguments) != (call.name, call.arguments):
            problem = f"the recording called {started.call.name}({started.call.arguments}) under this id"
        elif finished.name != call.name:
            problem = f"the recording's result under this id is from tool {finished.name!r}"
        if problem is not None or finished is None:
            message = (
                f"tool call {call.id} {call.name}({call.arguments}): {problem}; "
                "replay with live_tools=True or re-record the trace"
            )
            self.mismatches.append(message)
            raise ReplayMismatch(message)
        self.answered.append(call.id)
        return ToolResult(
            call_id=call.id, name=finished.name, ok=finished.ok, payload=finished.payload, artifact=finished.artifact,
            error=finished.error, kind="ok" if finished.ok else "error", duration_ms=finished.duration_ms,
        )  # fmt: skip
