"""Tools every runner offers: ``read_artifact`` pages through a stored output."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentcore.errors import ArtifactNotFound, ToolError
from agentcore.tools.base import ToolContext, ToolOutput, tool
from agentcore.tools.payloads import WINDOW_SLACK, whole_chars


@tool(timeout=None)
async def read_artifact(
    ctx: ToolContext,
    id: str,
    offset: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1)] = 4000,
) -> ToolOutput:
    """Read part of a stored artifact (the full output of an earlier tool call) as text.

    Offsets and lengths count bytes of the artifact, decoded as UTF-8 (undecodable bytes become
    U+FFFD). A page never starts or ends inside a character and holds at least one whole
    character, even when limit is smaller than it. Each page ends with "bytes X..Y of Z; next:
    offset=Y": call again with that offset for the next page.

    Args:
        id: The artifact id exactly as a tool result gave it (sha256:...).
        offset: Byte offset to start reading at.
        limit: Most bytes to read; capped at the runner's payload size.
    """
    try:
        ref = ctx.artifacts.info(id)
    except ArtifactNotFound as e:
        raise ToolError(f"{e}; pass an artifact id exactly as a tool result gave it (sha256:...)") from None
    if offset > ref.size:
        raise ToolError(f"offset {offset} is past the end of artifact {ref.id} ({ref.size} bytes); use 0..{ref.size}")
    limit = min(limit, ctx.payload_chars)
    start, raw = whole_chars(ctx.artifacts.read(ref.id, offset, limit + WINDOW_SLACK), offset, limit)
    end = start + len(raw)
    after = f"next: offset={end}" if end < ref.size else "end of artifact"
    note = f"{ref.media_type}, bytes {start}..{end} of {ref.size}; {after}"
    return ToolOutput(text=raw.decode("utf-8", errors="replace"), artifact=ref, note=note)
