"""agentcore: LLM agents whose every state change is an event in a log.

Replay a run, inspect any past state, resume after a crash. This module only re-exports the
public API (every event class and patch op included); see the README for concepts and the layout.
"""

from agentcore.core.events import (
    EVENT_ADAPTER,
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
    decode_event,
    encode_event,
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
from agentcore.storage.artifacts import ArtifactStore, MemoryArtifactStore
from agentcore.storage.base import EventStore, RunInfo
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run, import_trace, read_trace
from agentcore.tools.base import Tool, ToolResult, tool
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.runner import ToolRunner

__version__ = "0.1.0"

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
    "FactInput",
    "JsonPatch",
    "LLMCalled",
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
    "apply",
    "code_tools",
    "decode_event",
    "diff_states",
    "encode_event",
    "export_run",
    "fold",
    "import_trace",
    "plan_task",
    "read_trace",
    "replay_trace",
    "tool",
    "validate_plan",
]
