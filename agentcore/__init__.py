"""agentcore: LLM agents whose every state change is an event in a log.

Replay a run, inspect any past state, resume after a crash. This module only re-exports the
public API (every event class and patch op included); see the README for concepts and the layout.

Names are imported on first use (PEP 562 ``__getattr__``), so ``import agentcore`` (and so every
``agentcore`` command) does not pay for ``openai``, ``sqlite_utils`` or the run loop until a name
that needs them is used; ``from agentcore import X`` works for every name in ``__all__``.
"""

import importlib
import typing

from agentcore.version import __version__ as __version__

if typing.TYPE_CHECKING:
    from agentcore.core.event_codec import EVENT_ADAPTER, decode_event, encode_event
    from agentcore.core.events import (
        ArtifactRef,
        BaseEvent,
        Decided,
        Decision,
        Event,
        LLMCalled,
        PatchRejected,
        RunFinished,
        RunStarted,
        StatePatched,
        StepFailed,
        StepSkipped,
        StepStarted,
        StepSucceeded,
        TokenUsage,
        ToolCall,
        ToolFinished,
        ToolStarted,
        UserMessaged,
    )
    from agentcore.core.fold import apply, diff_states, fold
    from agentcore.core.patches import (
        AddOpenQuestions,
        AnswerQuestion,
        AppendKnownFacts,
        FactInput,
        JsonPatch,
        PatchOp,
        QuestionInput,
        ReplacePlan,
        SetStepStatus,
        StatePatch,
    )
    from agentcore.core.plans import Plan, RetryPolicy, Step, validate_plan
    from agentcore.core.state import RunState
    from agentcore.errors import (
        AgentcoreError,
        ArtifactNotFound,
        ConcurrencyError,
        ConfigError,
        ExportError,
        LeaseLost,
        ModelError,
        ModelOutputError,
        ModelRequestError,
        ModelUnavailable,
        NotAnAgentcoreDatabase,
        PatchError,
        PlanError,
        ReplayMismatch,
        RunFailed,
        RunNotFound,
        RunNotStarted,
        SchemaTooNew,
        StorageUnavailable,
        StoreError,
        ToolError,
        TraceError,
    )
    from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse, ToolSpec
    from agentcore.models.offline import OfflineCodeModel
    from agentcore.models.openai import OpenAIChatModel
    from agentcore.models.prices import ModelPrice
    from agentcore.replay.replayer import replay_trace
    from agentcore.roles.planner import plan_task
    from agentcore.runtime.agent import Agent, RunResult
    from agentcore.runtime.plan_runner import PlanRunner
    from agentcore.runtime.worker import Worker
    from agentcore.storage.artifacts import ArtifactStore, MemoryArtifactStore
    from agentcore.storage.base import EventStore, RunInfo
    from agentcore.storage.memory import MemoryEventStore
    from agentcore.storage.postgres.store import PostgresEventStore
    from agentcore.storage.sqlite.store import SQLiteEventStore
    from agentcore.storage.targets import open_store
    from agentcore.storage.trace import export_run, import_trace, read_trace
    from agentcore.tools.base import Tool, ToolResult, tool
    from agentcore.tools.code.agent_tools import code_tools
    from agentcore.tools.runner import ToolRunner

_LAZY: dict[str, str] = {
    "AddOpenQuestions": "agentcore.core.patches",
    "Agent": "agentcore.runtime.agent",
    "AgentcoreError": "agentcore.errors",
    "AnswerQuestion": "agentcore.core.patches",
    "AppendKnownFacts": "agentcore.core.patches",
    "ArtifactNotFound": "agentcore.errors",
    "ArtifactRef": "agentcore.core.events",
    "ArtifactStore": "agentcore.storage.artifacts",
    "BaseEvent": "agentcore.core.events",
    "ChatMessage": "agentcore.models.base",
    "ChatModel": "agentcore.models.base",
    "ChatRequest": "agentcore.models.base",
    "ChatResponse": "agentcore.models.base",
    "ConcurrencyError": "agentcore.errors",
    "ConfigError": "agentcore.errors",
    "Decided": "agentcore.core.events",
    "Decision": "agentcore.core.events",
    "EVENT_ADAPTER": "agentcore.core.event_codec",
    "Event": "agentcore.core.events",
    "EventStore": "agentcore.storage.base",
    "ExportError": "agentcore.errors",
    "FactInput": "agentcore.core.patches",
    "JsonPatch": "agentcore.core.patches",
    "LLMCalled": "agentcore.core.events",
    "LeaseLost": "agentcore.errors",
    "MemoryArtifactStore": "agentcore.storage.artifacts",
    "MemoryEventStore": "agentcore.storage.memory",
    "ModelError": "agentcore.errors",
    "ModelOutputError": "agentcore.errors",
    "ModelPrice": "agentcore.models.prices",
    "ModelRequestError": "agentcore.errors",
    "ModelUnavailable": "agentcore.errors",
    "NotAnAgentcoreDatabase": "agentcore.errors",
    "OfflineCodeModel": "agentcore.models.offline",
    "OpenAIChatModel": "agentcore.models.openai",
    "PatchError": "agentcore.errors",
    "PatchOp": "agentcore.core.patches",
    "PatchRejected": "agentcore.core.events",
    "Plan": "agentcore.core.plans",
    "PlanError": "agentcore.errors",
    "PlanRunner": "agentcore.runtime.plan_runner",
    "PostgresEventStore": "agentcore.storage.postgres.store",
    "QuestionInput": "agentcore.core.patches",
    "ReplacePlan": "agentcore.core.patches",
    "ReplayMismatch": "agentcore.errors",
    "RetryPolicy": "agentcore.core.plans",
    "RunFailed": "agentcore.errors",
    "RunFinished": "agentcore.core.events",
    "RunInfo": "agentcore.storage.base",
    "RunNotFound": "agentcore.errors",
    "RunNotStarted": "agentcore.errors",
    "RunResult": "agentcore.runtime.agent",
    "RunStarted": "agentcore.core.events",
    "RunState": "agentcore.core.state",
    "SQLiteEventStore": "agentcore.storage.sqlite.store",
    "SchemaTooNew": "agentcore.errors",
    "SetStepStatus": "agentcore.core.patches",
    "StatePatch": "agentcore.core.patches",
    "StatePatched": "agentcore.core.events",
    "Step": "agentcore.core.plans",
    "StepFailed": "agentcore.core.events",
    "StepSkipped": "agentcore.core.events",
    "StepStarted": "agentcore.core.events",
    "StepSucceeded": "agentcore.core.events",
    "StorageUnavailable": "agentcore.errors",
    "StoreError": "agentcore.errors",
    "TokenUsage": "agentcore.core.events",
    "Tool": "agentcore.tools.base",
    "ToolCall": "agentcore.core.events",
    "ToolError": "agentcore.errors",
    "ToolFinished": "agentcore.core.events",
    "ToolResult": "agentcore.tools.base",
    "ToolRunner": "agentcore.tools.runner",
    "ToolSpec": "agentcore.models.base",
    "ToolStarted": "agentcore.core.events",
    "TraceError": "agentcore.errors",
    "UserMessaged": "agentcore.core.events",
    "Worker": "agentcore.runtime.worker",
    "apply": "agentcore.core.fold",
    "code_tools": "agentcore.tools.code.agent_tools",
    "decode_event": "agentcore.core.event_codec",
    "diff_states": "agentcore.core.fold",
    "encode_event": "agentcore.core.event_codec",
    "export_run": "agentcore.storage.trace",
    "fold": "agentcore.core.fold",
    "import_trace": "agentcore.storage.trace",
    "open_store": "agentcore.storage.targets",
    "plan_task": "agentcore.roles.planner",
    "read_trace": "agentcore.storage.trace",
    "replay_trace": "agentcore.replay.replayer",
    "tool": "agentcore.tools.base",
    "validate_plan": "agentcore.core.plans",
}
"""Where each public name lives (``__all__`` is exactly these names)."""


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AddOpenQuestions",
    "Agent",
    "AgentcoreError",
    "AnswerQuestion",
    "AppendKnownFacts",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "BaseEvent",
    "ChatMessage",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ConcurrencyError",
    "ConfigError",
    "Decided",
    "Decision",
    "EVENT_ADAPTER",
    "Event",
    "EventStore",
    "ExportError",
    "FactInput",
    "JsonPatch",
    "LLMCalled",
    "LeaseLost",
    "MemoryArtifactStore",
    "MemoryEventStore",
    "ModelError",
    "ModelOutputError",
    "ModelPrice",
    "ModelRequestError",
    "ModelUnavailable",
    "NotAnAgentcoreDatabase",
    "OfflineCodeModel",
    "OpenAIChatModel",
    "PatchError",
    "PatchOp",
    "PatchRejected",
    "Plan",
    "PlanError",
    "PlanRunner",
    "PostgresEventStore",
    "QuestionInput",
    "ReplacePlan",
    "ReplayMismatch",
    "RetryPolicy",
    "RunFailed",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunNotStarted",
    "RunResult",
    "RunStarted",
    "RunState",
    "SQLiteEventStore",
    "SchemaTooNew",
    "SetStepStatus",
    "StatePatch",
    "StatePatched",
    "Step",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "StepSucceeded",
    "StorageUnavailable",
    "StoreError",
    "TokenUsage",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolFinished",
    "ToolResult",
    "ToolRunner",
    "ToolSpec",
    "ToolStarted",
    "TraceError",
    "UserMessaged",
    "Worker",
    "apply",
    "code_tools",
    "decode_event",
    "diff_states",
    "encode_event",
    "export_run",
    "fold",
    "import_trace",
    "open_store",
    "plan_task",
    "read_trace",
    "replay_trace",
    "tool",
    "validate_plan",
]
