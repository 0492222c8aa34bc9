"""The agentcore error tree.

Every error agentcore raises on purpose is an ``AgentcoreError``::

    AgentcoreError
    ├── ConfigError                  the developer's mistake: bad settings or arguments
    │   └── InvalidForkPoint         a seq a run cannot be forked at (0, past its end, inside a step)
    ├── PlanError                    a plan with duplicate ids, unknown dependencies or a cycle
    ├── PatchError                   a state patch that cannot apply (op index, path, reason)
    ├── EventError                   an event body that cannot be read
    │   ├── UnknownEventType
    │   └── UnsupportedEventVersion
    ├── StoreError                   the event or artifact store
    │   ├── ConcurrencyError         another writer appended to this run first
    │   │   └── LeaseLost            a worker's lease on a queued run was taken over (stale token)
    │   ├── RunNotFound
    │   │   └── RunNotStarted        the run exists but recorded no event: start it with run(...)
    │   ├── ArtifactNotFound
    │   ├── NotAnAgentcoreDatabase   another application's file (or not SQLite at all)
    │   │   └── DamagedDatabase      an agentcore file with missing tables/columns or half-applied migrations
    │   ├── SchemaTooNew
    │   └── StorageUnavailable       disk full, read-only file, I/O error
    ├── ModelError                   talking to an LLM
    │   ├── ModelRequestError        the server refused the request (4xx): fix the request or config
    │   ├── ModelUnavailable         transient failures outlasted the retry policy
    │   └── ModelOutputError         the model's answer did not parse or validate
    ├── ToolError                    a message for the model from a tool (never crashes a run)
    │   └── ToolTimeout
    ├── RunFailed                    a run could not go on
    │   └── RetriesExhausted
    ├── TraceError                   a trace file that cannot be read or replayed
    │   └── ReplayMismatch
    └── ExportError                  a receiver (OpenTelemetry) refused a run or could not be reached

Errors meant for the model (``ToolError``, ``ModelOutputError``, ``PatchError``, ``PlanError``)
carry messages written to be fed back to an LLM: they name what was wrong and what to do next.
The others are for the developer. Messages are built where the error is raised.
"""

from __future__ import annotations


class AgentcoreError(Exception):
    "Base class of every error agentcore raises on purpose"


class ConfigError(AgentcoreError):
    "A setting or argument given by the developer is invalid"


class InvalidForkPoint(ConfigError):
    "A run cannot be forked at the seq given: 0, past its end, or inside one recorded step (the message names valid seqs)"


class PlanError(AgentcoreError):
    "A plan is invalid: duplicate step ids, unknown dependencies or a cycle"

    def __init__(self, message: str, *, cycle: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.cycle = cycle


class PatchError(AgentcoreError):
    "A state patch cannot be applied; nothing of it was applied"

    def __init__(self, message: str, *, op_index: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.op_index = op_index
        self.path = path
        self.reason = message


class EventError(AgentcoreError):
    "An event body cannot be read"


class UnknownEventType(EventError):
    "The event's type tag is not one this version of agentcore knows"


class UnsupportedEventVersion(EventError):
    "The event's schema version is newer than this version of agentcore reads"


class StoreError(AgentcoreError):
    "The event store or the artifact store failed"


class ConcurrencyError(StoreError):
    "Another writer appended to this run first"


class LeaseLost(ConcurrencyError):
    "A worker's lease on a queued run is no longer valid: another worker took the run over"


class RunNotFound(StoreError):
    "No run with this id exists in the store"


class RunNotStarted(RunNotFound):
    "The run was created but recorded no event (it never started): start it with run(..., run_id=...)"


class ArtifactNotFound(StoreError):
    "No artifact with this id exists in the store"


class NotAnAgentcoreDatabase(StoreError):
    "The file is not an SQLite database written by agentcore"


class DamagedDatabase(NotAnAgentcoreDatabase):
    "An agentcore database whose schema or pages are damaged (missing tables or columns, half-applied migrations)"


class SchemaTooNew(StoreError):
    "The database was written by a newer agentcore; upgrade agentcore to open it"


class StorageUnavailable(StoreError):
    "The database could not be used: disk full, read-only file, I/O error, or a server that is down or refuses us"


class ModelError(AgentcoreError):
    "Talking to an LLM failed"


class ModelRequestError(ModelError):
    "The model server refused the request; retrying will not help"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelUnavailable(ModelError):
    "Transient failures of the model server outlasted the retry policy"


class ModelOutputError(ModelError):
    "The model's answer did not parse or did not validate"

    def __init__(self, message: str, *, response: object | None = None) -> None:
        super().__init__(message)
        self.response = response
        """The answer refused, when the model adapter refused it (a ``ChatResponse`` whose ``problem``
        is this message), so the caller can record what the server sent (usage, text); else ``None``."""


class ToolError(AgentcoreError):
    "A tool's message for the model; the run records it and goes on"


class ToolTimeout(ToolError):
    "A tool ran longer than its timeout"


class RunFailed(AgentcoreError):
    "A run could not go on"


class RetriesExhausted(RunFailed):
    "A step or call failed on every attempt its retry policy allowed"


class TraceError(AgentcoreError):
    "A trace file cannot be read, imported or replayed"


class ReplayMismatch(TraceError):
    "A replayed run asked for something the trace did not record"


class ExportError(AgentcoreError):
    "A receiver (an OpenTelemetry backend) refused an exported run or could not be reached"
