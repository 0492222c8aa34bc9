"""Static proof that the implementations satisfy their protocols (checked by mypy, never run).

``tests/guarantees/test_types.py`` type-checks this file; each assignment fails to type-check
when an implementation drifts from its protocol (a missing method, a changed signature, a
mutable attribute where the protocol promises a read-only property).
"""

from __future__ import annotations

from agentcore.core.clock import Clock, SystemClock
from agentcore.models.base import ChatModel, ClosableChatModel
from agentcore.models.offline import OfflineCodeModel
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel
from agentcore.replay.recorded import ReplayChatModel
from agentcore.storage.artifacts import ArtifactStore, MemoryArtifactStore
from agentcore.storage.base import EventStore, WorkQueue
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.postgres.artifacts import PostgresArtifactStore
from agentcore.storage.postgres.store import PostgresEventStore
from agentcore.storage.sqlite.artifacts import SQLiteArtifactStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing.clock import FakeClock


def stores(memory: MemoryEventStore, sqlite: SQLiteEventStore, postgres: PostgresEventStore) -> list[EventStore]:
    return [memory, sqlite, postgres]


def work_queues(postgres: PostgresEventStore) -> list[WorkQueue]:
    return [postgres]


def artifact_stores(
    memory: MemoryArtifactStore, sqlite: SQLiteArtifactStore, postgres: PostgresArtifactStore
) -> list[ArtifactStore]:
    return [memory, sqlite, postgres]


def chat_models(
    openai: OpenAIChatModel,
    scripted: ScriptedChatModel,
    function: FunctionChatModel,
    offline: OfflineCodeModel,
    replay: ReplayChatModel,
) -> list[ChatModel]:
    return [openai, scripted, function, offline, replay]


def closable_models(openai: OpenAIChatModel) -> list[ClosableChatModel]:
    return [openai]


def clocks(system: SystemClock, fake: FakeClock) -> list[Clock]:
    return [system, fake]
