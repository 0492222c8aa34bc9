"""The event codec: how events are written to and read from the log.

``encode_event`` writes an event's canonical JSON; ``decode_event`` reads one back from JSON text
or a decoded object. Bodies written by older schema versions are brought to ``CURRENT_VERSION`` by
``UPCASTERS`` when read; an unknown type or a newer version fails with an error naming it, never
with a half-read event. The event classes themselves are ``agentcore.core.events``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from agentcore.core.events import EVENT_TYPES, BaseEvent, Event
from agentcore.core.first_use import bind_on_first_use
from agentcore.errors import EventError, UnknownEventType, UnsupportedEventVersion

__all__ = ("CURRENT_VERSION", "EVENT_ADAPTER", "UPCASTERS", "decode_event", "encode_event", "upcast")

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))
"""Validates any event by its ``type``; built on first use (``agentcore runs`` never builds it)."""


def _build_validate_json() -> Callable[[str | bytes], Event]:
    EVENT_ADAPTER.rebuild()
    validate: Callable[[str | bytes], Event] = EVENT_ADAPTER.validator.validate_json
    return validate


_validate_json: Callable[[str | bytes], Event] = bind_on_first_use(globals(), "_validate_json", _build_validate_json)
"""``EVENT_ADAPTER.validate_json`` without the Python wrapper (bound on first use): the store's read
path (benchmark W2)."""

CURRENT_VERSION: dict[str, int] = {tag: 1 for tag in EVENT_TYPES} | {
    "llm_called": 2,
    "step_succeeded": 2,
    "step_failed": 3,
}
"""The schema version this code writes, per event type (``llm_called`` v2 added ``cost_usd``;
``step_failed`` v2 gave deadline stops their own kind, ``deadline``; ``step_succeeded`` v2 and
``step_failed`` v3 added ``worker``)."""


def _llm_called_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    """v1 bodies have no ``cost_usd``: their cost was never recorded (unknown)."""
    return {**body, "v": 2, "cost_usd": None}


_V1_DEADLINE_STOP = "stopped: the run's deadline"


def _step_failed_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    """v1 wrote a deadline stop as kind ``timeout`` whose error began with the words above: the only
    place that text is read; from v2 on the kind says it."""
    error = body.get("error")
    stopped = body.get("kind") == "timeout" and isinstance(error, str) and error.startswith(_V1_DEADLINE_STOP)
    return {**body, "v": 2, **({"kind": "deadline"} if stopped else {})}


def _no_worker(version: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def up(body: dict[str, Any]) -> dict[str, Any]:
        """Older step outcomes name no worker: the process driving the run ran the step."""
        return {**body, "v": version + 1, "worker": None}

    return up


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("llm_called", 1): _llm_called_v1_to_v2,
    ("step_failed", 1): _step_failed_v1_to_v2,
    ("step_failed", 2): _no_worker(2),
    ("step_succeeded", 1): _no_worker(1),
}
"""``(type, v) -> fn`` turning a version-``v`` body into a version ``v + 1`` body."""


def upcast(body: dict[str, Any]) -> dict[str, Any]:
    """Bring an event body to the current version of its type.

    Raises:
        UnknownEventType: the body's ``type`` is not a known event.
        UnsupportedEventVersion: the body was written by a newer agentcore.
    """
    tag = body.get("type")
    if tag not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise UnknownEventType(f"unknown event type {tag!r} (known types: {known})")
    version = body.get("v", 1)
    current = CURRENT_VERSION[tag]
    if not isinstance(version, int) or version < 1:
        raise EventError(f"event type {tag!r} has an invalid schema version {version!r}")
    if version > current:
        raise UnsupportedEventVersion(
            f"event type {tag!r} has schema version {version}, but this agentcore reads up to "
            f"version {current}: upgrade agentcore to read this log"
        )
    while version < current:
        step = UPCASTERS.get((tag, version))
        if step is None:
            raise UnsupportedEventVersion(f"no upcaster for event type {tag!r} version {version}")
        body = step(body)
        if not isinstance(body, dict) or body.get("v") != version + 1:
            got = body.get("v") if isinstance(body, dict) else type(body).__name__
            raise EventError(
                f"the upcaster for {tag!r} version {version} must return a version {version + 1} body, got {got!r}"
            )
        version += 1
    return body


def decode_event(data: str | bytes | dict[str, Any]) -> Event:
    """Read one event from JSON text or a decoded JSON object.

    Raises:
        EventError: (or a subclass) naming what is wrong: not JSON, unknown type, newer version,
            or fields that do not validate.
    """
    if isinstance(data, (str, bytes)):
        # fast path: a current-version body parses and validates in one pass inside pydantic-core;
        # anything else (old version, unknown type, bad field) takes the slow path for an upcast
        # or a precise error
        try:
            event: Event = _validate_json(data)
        except ValidationError:
            pass
        else:
            if event.v == CURRENT_VERSION[event.type]:
                return event
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, bytes not UTF-8, nesting past the stack
            raise EventError(f"event body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise EventError(f"event body must be a JSON object, got {type(data).__name__}")
    body = upcast(data)
    try:
        return EVENT_ADAPTER.validate_python(body)
    except ValidationError as e:
        raise EventError(f"invalid {body.get('type')!r} event: {_one_line(e)}") from None


def _one_line(e: ValidationError, most: int = 4) -> str:
    """A validation error on one line: ``where: what`` for its first ``most`` errors (no input values,
    which may be huge, and none of pydantic's links)."""
    errors = e.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(map(str, err['loc'])) or '(the event)'}: {err['msg']}" for err in errors[:most]]
    more = f" (and {len(errors) - most} more)" if len(errors) > most else ""
    return " ".join(("; ".join(parts) + more).split())


def encode_event(event: BaseEvent) -> str:
    """The canonical JSON text of an event (what the store writes)."""
    return event.model_dump_json()
