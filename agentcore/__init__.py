"""agentcore: LLM agents whose every state change is an event in an SQLite log.

Replay a run, inspect any past state, resume after a crash. This module only re-exports the
public API; see the README for concepts.
"""

from agentcore.artifacts import ArtifactStore, MemoryArtifactStore
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
from agentcore.events import EVENT_ADAPTER, ArtifactRef, Decision, Event, ToolCall, decode_event, encode_event
from agentcore.llm import ChatMessage, ChatModel, ChatRequest, ChatResponse, OpenAIChatModel, ToolSpec
from agentcore.offline import OfflineCodeModel
from agentcore.patches import (
    AddOpenQuestions,
    AnswerQuestion,
    AppendKnownFacts,
    FactInput,
    JsonPatch,
    ReplacePlan,
    SetStepStatus,
    StatePatch,
)
from agentcore.planner import plan_task
from agentcore.plans import Plan, RetryPolicy, Step, validate_plan
from agentcore.replay import replay_trace
from agentcore.runtime import Agent, RunResult
from agentcore.runtime_plans import PlanRunner
from agentcore.sqlite_store import SQLiteEventStore
from agentcore.state import RunState, apply, diff_states, fold
from agentcore.store import EventStore, MemoryEventStore, RunInfo
from agentcore.toolkits.code.agent_tools import code_tools
from agentcore.tools import Tool, ToolResult, ToolRunner, tool
from agentcore.trace import export_run, import_trace, read_trace

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
    "ChatMessage",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ConcurrencyError",
    "ConfigError",
    "Decision",
    "EVENT_ADAPTER",
    "Event",
    "EventStore",
    "FactInput",
    "JsonPatch",
    "MemoryArtifactStore",
    "MemoryEventStore",
    "ModelError",
    "ModelOutputError",
    "ModelRequestError",
    "ModelUnavailable",
    "NotAnAgentcoreDatabase",
    "OfflineCodeModel",
    "OpenAIChatModel",
    "PatchError",
    "Plan",
    "PlanError",
    "PlanRunner",
    "ReplacePlan",
    "ReplayMismatch",
    "RetryPolicy",
    "RunFailed",
    "RunInfo",
    "RunNotFound",
    "RunNotStarted",
    "RunResult",
    "RunState",
    "SQLiteEventStore",
    "SchemaTooNew",
    "SetStepStatus",
    "StatePatch",
    "Step",
    "StorageUnavailable",
    "StoreError",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolResult",
    "ToolRunner",
    "ToolSpec",
    "TraceError",
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
