"""MCP tool arguments checked against the server's JSON schema, and MCP results made tool outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from agentcore.errors import ToolError

__all__ = ("MCPArguments", "check_arguments", "output_of")


class MCPArguments(BaseModel):
    """Any JSON object (MCP tools are checked against their own schema by ``check_arguments``)."""

    model_config = ConfigDict(extra="allow")


def check_arguments(tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` as a dict once they fit ``schema`` (JSON Schema, as the server gave it).

    Raises:
        pydantic.ValidationError: one error per violation, located at its path, so the model is
            told what to fix the same way as for any other tool.
    """
    import jsonschema  # type: ignore[import-untyped]

    if not isinstance(arguments, Mapping):
        arguments = {}
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator = validator_cls(schema)
        problems = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.absolute_path))
    except jsonschema.exceptions.SchemaError:
        problems = []  # a server's broken schema is its problem: let the server judge the call
    if problems:
        details = [
            InitErrorDetails(
                type=PydanticCustomError("mcp_schema", "{message}", {"message": p.message[:300]}),
                loc=tuple(p.absolute_path),
                input=p.instance,
            )
            for p in problems[:10]
        ]
        raise ValidationError.from_exception_data(f"{tool} arguments", details)
    return dict(arguments)


def output_of(result: Any, tool: str) -> Any:
    """What a ``CallToolResult`` gives the runner: its structured content (a JSON object) when it
    has one, else its text blocks joined, else its content blocks as JSON.

    Raises:
        ToolError: the server reported the call as failed (``isError``): its text is the message.
    """
    blocks = list(getattr(result, "content", None) or [])
    texts = [b.text for b in blocks if getattr(b, "type", None) == "text"]
    if getattr(result, "is_error", False):
        raise ToolError("\n".join(texts).strip() or f"MCP tool {tool!r} failed (no message)")
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        return structured
    if len(texts) == len(blocks):
        return "\n".join(texts)
    return [b.model_dump(mode="json", exclude_none=True) for b in blocks]
