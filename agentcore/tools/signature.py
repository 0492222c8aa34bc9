"""A tool function's signature as a pydantic model and a JSON schema, and its docstring's words.

``@tool`` reads the parameters (type hints, defaults, ``Field`` settings) into an arguments model,
the Google-style docstring (via ``docstring-parser``) into the tool's description and each
argument's description, and writes the JSON schema the model sees without pydantic's generated
``title`` keys (``ToolJsonSchema``).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema

from agentcore.errors import ConfigError

__all__ = ("IDEMPOTENCY_PARAM", "ToolJsonSchema", "arguments_model", "arguments_schema", "parse_docstring")

IDEMPOTENCY_PARAM = "idempotency_key"
"""A parameter with this name receives the call's idempotency key from the runner."""


class ToolJsonSchema(GenerateJsonSchema):
    """JSON schema without the ``title`` keys pydantic generates (noise for a model reading it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: CoreSchema, mode: Any = "validation") -> JsonSchemaValue:
        out = super().generate(schema, mode=mode)
        out.pop("title", None)
        for definition in out.get("$defs", {}).values():
            definition.pop("title", None)
        return out

    def enum_schema(self, schema: Any) -> JsonSchemaValue:
        out = super().enum_schema(schema)
        out.pop("title", None)
        return out


def arguments_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an arguments model, as the model sees it (no generated titles)."""
    return model.model_json_schema(schema_generator=ToolJsonSchema)


def _one_line(text: str | None) -> str:
    return " ".join(line.strip() for line in (text or "").splitlines() if line.strip())


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and each ``Args:`` entry's description, of a Google-style docstring."""
    parsed = docstring_parser.parse(doc, style=docstring_parser.DocstringStyle.GOOGLE)
    summary = parsed.short_description or ""
    if parsed.long_description and not parsed.blank_after_short_description:
        summary = f"{summary} {parsed.long_description.split(chr(10) * 2, 1)[0]}"  # the paragraph goes on
    args = {p.arg_name.lstrip("*"): _one_line(p.description) for p in parsed.params}
    return _one_line(summary), args


def arguments_model(
    fn: Callable[..., Any], tool_name: str, arg_docs: dict[str, str], context_type: type
) -> tuple[type[BaseModel], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The pydantic model of a function's parameters, minus those the runner fills.

    Returns:
        The model; (model field, parameter) pairs; the parameters filled by the runner (named
        ``idempotency_key``, or typed ``context_type``).

    Raises:
        ConfigError: a parameter has no type hint, a type pydantic cannot validate, is ``*args``,
            ``**kwargs`` or positional-only, or the docstring documents a parameter that does not exist.
    """
    signature, hints = _read_signature(fn, tool_name, arg_docs)
    fields: dict[str, Any] = {}
    field_params: list[tuple[str, str]] = []
    context_params: list[str] = []
    for i, (pname, param) in enumerate(signature.parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(
                f"tool {tool_name!r}: parameter {pname!r} is {param.kind.description}; tools take named parameters only"
            )
        hint = hints.get(pname)
        if pname == IDEMPOTENCY_PARAM or hint is context_type or context_type in typing.get_args(hint):
            context_params.append(pname)
            continue
        if hint is None:
            raise ConfigError(
                f"tool {tool_name!r}: parameter {pname!r} has no type hint; annotate it "
                f"(e.g. `{pname}: str`) so the model is told what to pass"
            )
        fname, fields[fname] = _field(i, pname, param, hint, arg_docs.get(pname))
        field_params.append((fname, pname))
    try:
        model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    except Exception as e:
        raise ConfigError(f"tool {tool_name!r}: a parameter type cannot be validated: {e}") from e
    return model, tuple(field_params), tuple(context_params)


def _read_signature(
    fn: Callable[..., Any], tool_name: str, arg_docs: dict[str, str]
) -> tuple[inspect.Signature, dict[str, Any]]:
    """The function's signature and resolved type hints, once the docstring is known to document
    only real parameters."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"tool {tool_name!r}: cannot read the function's signature: {e}") from e
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        raise ConfigError(
            f"tool {tool_name!r}: cannot resolve its type hints ({type(e).__name__}: {e}); "
            "define the types it uses at module level"
        ) from e
    if stray := sorted(set(arg_docs) - set(signature.parameters)):
        raise ConfigError(
            f"tool {tool_name!r}: the docstring's Args section documents {', '.join(map(repr, stray))}, "
            f"which is not a parameter; its parameters are: {', '.join(signature.parameters) or 'none'}"
        )
    return signature, hints


def _field(i: int, pname: str, param: inspect.Parameter, hint: Any, doc: str | None) -> tuple[str, Any]:
    """The model field for parameter number ``i``: its name (``arg{i}_`` with an alias when the
    parameter's name would clash with pydantic's) and its ``(type, FieldInfo)``."""
    default = ... if param.default is param.empty else param.default
    safe = not pname.startswith(("_", "model_")) and not hasattr(BaseModel, pname)
    fname = pname if safe else f"arg{i}_"
    extra: dict[str, Any] = {} if safe else {"alias": pname}
    if doc:
        extra["description"] = doc
    if isinstance(default, FieldInfo):  # `x: int = Field(3, ge=0)`: keep its settings
        return fname, (Annotated[hint, default], Field(**extra))
    return fname, (hint, Field(default, **extra))
