"""One model turn, for every role: ask, read the answer, and re-ask with the reason, a bounded number of times.

The controller, the processor and the planner differ only in how they build a request and how
they read an answer; ``ask_until_valid`` is the loop they share:

1. ``build(feedback)`` makes the request (``feedback`` is ``None`` the first time, then why the
   previous answer was refused, with what it said);
2. the model answers; an answer the model adapter found unusable (``ChatResponse.problem``, or a
   ``ModelOutputError`` carrying the answer) and an answer cut short (``finish_reason`` ``"length"``
   or ``"content_filter"``) are refused before they are read, so a cut answer is never taken as a
   whole one, and the refused answer is kept on the attempt (its usage and text get recorded);
3. ``parse(response)`` reads it; a ``ModelOutputError`` (or any other exception the parser raises:
   model output must never break a run) refuses the answer and goes back to the model.

Model errors other than ``ModelOutputError`` end the turn at once (``Outcome.fatal``); so does any
other exception the model raises, wrapped in a ``ModelError`` that names it. Only agentcore's own
signals that are not about the answer (``ConfigError``, ``ReplayMismatch``, store errors) propagate.

Also here, used by all roles: ``clip``, ``clip_payload``, ``load_prompt``, ``strip_fences`` and ``read_model_json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.json_text import JSONTextError, NotJSON, read_json, strip_fences
from agentcore.core.text import clip, package_text
from agentcore.errors import AgentcoreError, ConfigError, ModelError, ModelOutputError
from agentcore.models.base import ChatModel, ChatRequest, ChatResponse
from agentcore.tools.payloads import PAYLOAD_NOTE_CHARS

__all__ = (
    "CUT_FINISH_REASONS",
    "Attempt",
    "Outcome",
    "ask_until_valid",
    "clip",
    "clip_payload",
    "load_prompt",
    "read_model_json",
    "strip_fences",
)

T = TypeVar("T")

MAX_SAID_CHARS = 800
"""How much of a refused answer is quoted back to the model."""

CUT_FINISH_REASONS = {
    "length": "it was cut off at the token limit (finish_reason 'length')",
    "content_filter": "it was cut off by the server's content filter (finish_reason 'content_filter')",
}
"""Finish reasons that mean the answer is not whole: it is refused, never used."""


def load_prompt(name: str) -> str:
    """The text of the package prompt ``agentcore/roles/prompts/<name>``."""
    return package_text("agentcore.roles", "prompts", name)


_PAYLOAD_NOTE = re.compile(r"\n\[[^\n]*\]\Z")
_NOTE_OFFSET = re.compile(r"offset=(\d+)\) continues from here")


def clip_payload(payload: str, limit: int) -> str:
    """A tool payload cut to about ``limit`` characters, keeping its closing note.

    A payload the ``ToolRunner`` bounded ends with a note on its own line (``[... N more
    characters not shown; full output: artifact ...; read_artifact(id=..., offset=K) continues
    from here]``). A plain ``clip`` would cut that note away and the model would never learn how to
    read the rest; here the note stays, and its ``offset`` is moved back to where the shown text
    now ends (the shown text is a prefix of the artifact's text, so the byte offset is exact).
    """
    if len(payload) <= limit:
        return payload
    match = _PAYLOAD_NOTE.search(payload)
    if match is None or len(match.group(0)) > PAYLOAD_NOTE_CHARS + 1:
        return clip(payload, limit)
    note, body = match.group(0), payload[: match.start()]
    keep = max(limit - len(note), limit // 2)  # the body is whole when the note alone makes the payload long
    offset = _NOTE_OFFSET.search(note)
    if offset is not None:
        moved = len(body[:keep].encode("utf-8", "surrogatepass"))
        note = note[: offset.start(1)] + str(moved) + note[offset.end(1) :]
    return clip(body, keep) + note


MAX_OBJECT_SCAN = 20
"""How many JSON objects ``read_model_json`` looks for in an answer with prose around its JSON."""


def _objects_in_prose(text: str) -> list[str]:
    """The texts of the top-level JSON objects inside ``text`` (at most ``MAX_OBJECT_SCAN``, found in
    at most ``10 * MAX_OBJECT_SCAN`` tries), left to right."""
    decoder = json.JSONDecoder()
    found: list[str] = []
    start = text.find("{")
    tries = 0
    while start >= 0 and len(found) < MAX_OBJECT_SCAN and tries < 10 * MAX_OBJECT_SCAN:
        tries += 1  # bounded: each try may read to the end of the text
        try:
            _obj, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        found.append(text[start:end])
        start = text.find("{", end)
    return found


def read_model_json(text: str) -> Any:
    """The JSON value of a model's answer (fences stripped).

    An answer that is not JSON but holds exactly one JSON object among prose (``Here is the
    patch: ```json {...}``` Let me know!``) is read as that object: the answer must be one JSON
    value, so the object is what the model meant. Two or more objects are refused (which one?).

    Raises:
        ModelOutputError: not JSON, non-finite or overflowing numbers, nested too deeply or an
            integer too long (see ``agentcore.core.json_text.read_json``), or several objects
            among prose; the message is written for the model.
    """
    stripped = strip_fences(text)
    try:
        return read_json(stripped)
    except JSONTextError as e:
        if not isinstance(e, NotJSON):
            raise ModelOutputError(f"your answer cannot be used: {e}") from None
        objects = _objects_in_prose(stripped)
        if len(objects) > 1:
            raise ModelOutputError(
                f"your answer holds {len(objects)} separate JSON objects among other text; "
                "send exactly one JSON object and nothing else"
            ) from None
        if not objects:
            raise ModelOutputError(
                f"your answer is {e}: it starts with {clip(stripped, 60)!r}; send exactly one JSON object "
                "and nothing else"
            ) from None
    try:
        return read_json(objects[0])
    except JSONTextError as e:
        raise ModelOutputError(f"your answer cannot be used: {e}") from None


@dataclass(frozen=True, kw_only=True)
class Attempt(Generic[T]):
    """One call to a model and what came of it."""

    request: ChatRequest
    response: ChatResponse | None
    """``None`` when the model could not be reached."""
    latency_ms: float
    value: T | None = None
    """What ``parse`` read from the answer, when it was accepted."""
    error: str | None = None
    """Why the answer was refused (or why the call failed); ``None`` when it was accepted."""
    problem: Exception | None = field(default=None, compare=False, repr=False)
    """The exception that refused the answer (roles attach details to their own subclasses)."""

    @property
    def accepted(self) -> bool:
        """Whether this attempt's answer was used."""
        return self.error is None and self.value is not None


@dataclass(kw_only=True)
class Outcome(Generic[T]):
    """All attempts of one turn: an accepted value, or the reason there is none."""

    attempts: list[Attempt[T]] = field(default_factory=list)
    fatal: ModelError | None = None
    """A model error that ends the run (the server refused, stayed unavailable, or the model raised)."""

    @property
    def value(self) -> T | None:
        """The value of the last attempt, when it was accepted."""
        last = self.attempts[-1] if self.attempts else None
        return last.value if last is not None and last.accepted else None

    @property
    def reason(self) -> str | None:
        """Why there is no value: the last attempt's error (``None`` when there is a value)."""
        if self.value is not None or not self.attempts:
            return None
        return self.attempts[-1].error


def said(response: ChatResponse | None) -> str:
    """What a model answered, as quoted back to it: its content and its tool calls, clipped."""
    if response is None:
        return ""
    if not response.tool_calls:
        return clip(response.content or "", MAX_SAID_CHARS)
    answer: dict[str, Any] = {"content": response.content}
    answer["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    return clip(json.dumps(answer, ensure_ascii=False), MAX_SAID_CHARS)


def feedback_for(error: str, response: ChatResponse | None) -> str:
    """The feedback for a refused answer: the reason, then what the model said."""
    quoted = said(response)
    return f"{error}\nYour answer was: {quoted}" if quoted else error


def cut_reason(response: ChatResponse) -> str | None:
    """Why ``response`` is not a whole answer, or ``None`` when it is."""
    why = CUT_FINISH_REASONS.get((response.finish_reason or "").lower())
    if why is None:
        return None
    return f"your answer was not used: {why}. Answer again, shorter, with the whole answer"


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {clip(str(e), 500)}"


async def _call(model: ChatModel, request: ChatRequest) -> ChatResponse:
    """``model.complete(request)``; exceptions that are not ``ModelError`` become one."""
    try:
        return await model.complete(request)
    except AgentcoreError:  # ModelError, and agentcore's own signals (ConfigError, ReplayMismatch...)
        raise
    except (RecursionError, ValueError, TypeError, KeyError, AttributeError, UnicodeError) as e:
        problem = f"the model's answer could not be read ({_describe(e)})"
        # recorded as an unusable answer, so a replay refuses it the same way (and re-asks, or ends the turn)
        raise ModelOutputError(problem, response=ChatResponse(content=None, problem=problem)) from e
    except Exception as e:
        raise ModelError(f"the model raised {_describe(e)}") from e


async def ask_until_valid(
    model: ChatModel,
    build: Callable[[str | None], ChatRequest],
    parse: Callable[[ChatResponse], T],
    max_attempts: int,
    *,
    refusals: Sequence[type[Exception]] = (ModelOutputError,),
    clock: Clock | None = None,
) -> Outcome[T]:
    """Ask ``model`` until ``parse`` accepts an answer, ``max_attempts`` times at most.

    Args:
        model: The role's model.
        build: Makes the request from the feedback on the previous answer (``None`` at first).
        parse: Reads a value from an answer, raising one of ``refusals`` (or any exception) to
            refuse it.
        max_attempts: Calls to the model, the first included (>= 1).
        refusals: Exceptions whose message is the reason given back to the model as is;
            any other exception from ``parse`` is given back with its type name.
        clock: Measures each attempt's ``latency_ms`` (``SystemClock`` by default).

    Returns:
        Every attempt; ``value`` is set when the last one was accepted, ``fatal`` when the model
        failed for a reason that re-asking cannot fix.

    Raises:
        ConfigError: ``max_attempts`` < 1.
    """
    if max_attempts < 1:
        raise ConfigError(f"max_attempts must be >= 1, got {max_attempts}")
    outcome: Outcome[T] = Outcome()
    feedback: str | None = None
    for _ in range(max_attempts):
        attempt, fatal = await _attempt(model, build(feedback), parse, refusals, clock or SystemClock())
        outcome.attempts.append(attempt)
        if fatal is not None:
            outcome.fatal = fatal
            return outcome
        if attempt.error is None:
            return outcome
        feedback = feedback_for(attempt.error, attempt.response)
    return outcome


async def _attempt(
    model: ChatModel,
    request: ChatRequest,
    parse: Callable[[ChatResponse], T],
    refusals: Sequence[type[Exception]],
    clock: Clock,
) -> tuple[Attempt[T], ModelError | None]:
    """One call and its reading: an accepted or refused ``Attempt``, and the ``ModelError`` that ends
    the turn (then the attempt has no response). agentcore's own signals propagate."""
    started = clock.monotonic()
    response: ChatResponse | None = None

    def attempt(**fields: Any) -> Attempt[T]:
        latency = (clock.monotonic() - started) * 1000
        return Attempt(request=request, response=response, latency_ms=latency, **fields)

    try:
        response = await _call(model, request)
        if response.problem is not None:  # a recorded answer the adapter refused: refused the same way
            raise ModelOutputError(response.problem)
        cut = cut_reason(response)
        if cut is not None:
            raise ModelOutputError(cut)
        value = parse(response)
    except ModelOutputError as e:
        if response is None and isinstance(e.response, ChatResponse):
            response = e.response  # the adapter refused it: record what the server sent
        return attempt(error=str(e), problem=e), None
    except ModelError as e:
        response = None
        return attempt(error=str(e)), e
    except tuple(refusals) as e:
        return attempt(error=str(e), problem=e), None
    except AgentcoreError:  # agentcore's own signals (ReplayMismatch, ConfigError...) are not about the answer
        raise
    except Exception as e:  # the parser choked on the answer: refuse it, never escape
        return attempt(error=f"your answer could not be read ({_describe(e)})", problem=e), None
    return attempt(value=value), None
