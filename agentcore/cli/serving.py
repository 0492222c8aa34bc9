"""``agentcore mcp-serve``: the code-search tools of a repository as an MCP server over stdio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agentcore.cli.support import DB_ENV, err_console, open_db, safe
from agentcore.storage.artifacts import ArtifactStore, MemoryArtifactStore

__all__ = ("COMMANDS",)

INSTRUCTIONS = (
    "Code search over one repository: find definitions, search text, list and read files. Paths are "
    "relative to the repository root; nothing outside it can be read. Long results are clipped: "
    "read_artifact reads the rest."
)


@click.command(name="mcp-serve")
@click.option(
    "--repo", required=True, type=click.Path(exists=True, file_okay=False), help="The repository to serve (the root)."
)
@click.option(
    "--db",
    "db",
    default=None,
    help=f"Record each call in this database (an SQLite file path or a postgresql:// URL; default: the "
    f"group's --db or ${DB_ENV}; with neither, nothing is recorded).",
)
def mcp_serve(repo: str, db: str | None) -> None:
    """Serve the code-search tools of REPO over MCP (stdio), confined to REPO.

    Every tool of the code toolkit is offered (definitions, text search, file listing, reading
    files, and whatever the toolkit adds), plus read_artifact. With --db (here, on the group, or
    $AGENTCORE_DB) each call is recorded in that database as one run per server session; MCP
    clients usually start servers with few environment variables, so name it in the server's
    args (or its env).
    """
    from agentcore.event_loop import run  # here, not at the top: the inspection commands never pay for asyncio

    try:
        from agentcore.tools.mcp.server import CallLog, serve_stdio, tool_server
    except ImportError as e:
        raise click.UsageError(f"mcp-serve needs the mcp extra: pip install 'agentcore[mcp]' ({e})") from None
    from agentcore.runtime.redaction import RedactingArtifacts, redactor
    from agentcore.tools.code.agent_tools import code_tools

    root = str(Path(repo).resolve())
    tools = code_tools(root)
    target = db if db is not None else (click.get_current_context().find_root().params or {}).get("db")
    store = open_db(target, must_exist=False) if target is not None else None
    artifacts: ArtifactStore = store.artifacts if store is not None else MemoryArtifactStore()
    redact = redactor(())  # the environment's OPENAI_API_KEY, in a file a client reads, is not recorded
    if store is not None and redact is not None:
        artifacts = RedactingArtifacts(artifacts, redact)
    log: Any = None
    try:
        if store is not None:
            config = {"mcp_serve": {"repo": root, "tools": [t.name for t in tools]}}
            log = CallLog(store, f"mcp-serve {root}", config, redact=redact)
            err_console.print(f"agentcore mcp-serve: {safe(root)}; calls recorded as run {safe(log.run_id)}")
        server = tool_server(tools, artifacts, name="agentcore-code", instructions=INSTRUCTIONS, log=log)
        run(serve_stdio(server))
    finally:
        if log is not None:
            log.close()
        if store is not None:
            store.close()


COMMANDS = (mcp_serve,)
