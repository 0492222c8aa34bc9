"""Trace files: one run as a portable, self-checking JSON Lines file.

A trace holds everything needed to look at or replay a run with no database and no network::

    {"kind": "header", "format": "agentcore-trace", "format_version": 1, "agentcore_version": ..., "recorded": {...}}
    {"kind": "event", "event": {...}}                  one line per event, seqs 1..n
    {"kind": "artifact", "id": "sha256:...", "media_type": ..., "size": ..., "encoding": "utf-8"|"base64", "data": ...}
    {"kind": "footer", "events": n, "artifacts": m, "sha256": "<hex of every byte before this line>"}

Invariant: ``import_trace(export_run(run))`` gives back the same events, the same artifacts and so
the same state at every seq. Import checks the whole file first (format version, footer digest,
artifact hashes, event bodies, consecutive seqs, that every event folds) and writes only when all of
it is sound, so a bad file imports nothing. A forked run is exported with the events it inherits,
so its trace stands alone.

Modules: ``records`` (format constants, ``Trace``, the line encoding), ``writer`` (``export_run``),
``reader`` (``read_trace`` and its checks), ``importer`` (``import_trace``, ``was_imported``).
"""

from __future__ import annotations

from agentcore.storage.trace.importer import IMPORT_MARK_MEDIA_TYPE, import_mark, import_trace, was_imported
from agentcore.storage.trace.reader import read_trace
from agentcore.storage.trace.records import (
    FORMAT,
    FORMAT_VERSION,
    MAX_TRACE_BYTES,
    RESERVED_RUN_IDS,
    Trace,
    TraceArtifact,
    referenced_artifacts,
)
from agentcore.storage.trace.writer import export_run

__all__ = (
    "FORMAT",
    "FORMAT_VERSION",
    "IMPORT_MARK_MEDIA_TYPE",
    "MAX_TRACE_BYTES",
    "RESERVED_RUN_IDS",
    "Trace",
    "TraceArtifact",
    "export_run",
    "import_mark",
    "import_trace",
    "read_trace",
    "referenced_artifacts",
    "was_imported",
)
