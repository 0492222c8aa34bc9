"""``OpenAIChatModel``: the only place that imports ``openai``.

It talks to OpenAI or any OpenAI-compatible server (vLLM, llama.cpp, Ollama...): it retries transient
failures itself (each HTTP attempt is counted), falls back to JSON tool calling or ``json_object``
output when a server lacks native tools or ``json_schema``, and never puts the API key in a repr, a
returned value or an error message. It keeps one HTTP client per event loop, closed by ``aclose()``
or when that loop shuts down, so one model can serve many ``asyncio.run``.

Set ``ALLOW_REAL_REQUESTS = False`` (tests do) to refuse any server that is not on loopback.

Why the SDK's own retry (``max_retries``) stays off: it retries the same 408/409/429/5xx and honours
``Retry-After``, but (1) it retries a 5xx before this adapter sees the body, so llama-cpp-python's
bare 500 to a ``json_schema`` request would cost every backoff before the switch to ``json_object``;
(2) it never retries an HTTP 200 whose body is not a completion, which this adapter must; (3) its
sleep cannot be replaced (this adapter waits on its ``Clock``: tests pass a ``FakeClock``) and its attempts are not counted
(``ChatResponse.attempts``). The loop here uses ``RetryPolicy.delay``, the backoff plan steps use.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncGenerator
from typing import Any, Literal
from urllib.parse import urlsplit

import openai
from pydantic import SecretStr

from agentcore import event_loop
from agentcore.core.clock import Clock, SystemClock
from agentcore.core.json_text import strip_fences
from agentcore.core.plans import RetryPolicy
from agentcore.core.text import clip, redact_secrets, shown_url, url_secrets
from agentcore.core.values import TokenUsage
from agentcore.errors import ConfigError, ModelOutputError, ModelRequestError, ModelUnavailable
from agentcore.models import openai_wire as llm_wire
from agentcore.models.base import ChatRequest, ChatResponse, StructuredMode, ToolCallRequest
from agentcore.models.json_decisions import looks_like_json_decision, parse_json_decision
from agentcore.models.openai_config import check_settings, endpoint

__all__ = ("ALLOW_REAL_REQUESTS", "OpenAIChatModel")

ALLOW_REAL_REQUESTS: bool = True
"""When False, ``OpenAIChatModel`` refuses every server that is not on loopback."""

_NO_KEY = "not-needed"
_RETRYABLE_4XX = (408, 409, 429)


async def _close_at_shutdown(client: openai.AsyncOpenAI) -> AsyncGenerator[None, None]:
    """Once started, close ``client`` when the loop it was started in shuts down.

    The running loop tracks an async generator from its first step: ``asyncio.run`` (and anything
    calling ``loop.shutdown_asyncgens()``) closes it before closing the loop, which runs the
    ``finally`` inside that loop, where the client's connections live.
    """
    try:
        yield
    finally:
        await client.close()


def _check_allowed(base_url: str) -> None:
    if not ALLOW_REAL_REQUESTS and not llm_wire.is_loopback(urlsplit(base_url).hostname):
        raise ConfigError(
            f"refusing to call {shown_url(base_url)}: agentcore.models.openai.ALLOW_REAL_REQUESTS is False (tests block real "
            "model calls) and only loopback servers (127.0.0.1, localhost, ::1) are allowed; point "
            "OPENAI_BASE_URL at a local server or use a scripted model"
        )


class OpenAIChatModel:
    """A chat model behind the OpenAI chat completions API (OpenAI or any compatible server).

    Args:
        model: Model name; defaults to ``AGENTCORE_MODEL``, then ``OPENAI_MODEL``.
        api_key: Defaults to ``OPENAI_API_KEY``; may be omitted when a base URL is set (local
            servers), then a placeholder is sent.
        base_url: Defaults to ``OPENAI_BASE_URL``, then OpenAI's URL.
        tool_mode: "native" sends ``tools`` and reads ``tool_calls``; "json" asks for a JSON
            decision object in the content instead; "auto" starts native, with a short system
            note naming the tools and the JSON fallback format (for servers that drop ``tools``),
            and switches to json for good once the server answers a tool request with a text that
            is a JSON decision (JSON quoted in prose does not count).
        schema_mode: "json_schema" sends ``response_format`` json_schema; "json_object" sends
            json_object plus the schema in the system prompt; "auto" tries json_schema and falls
            back to json_object for good when the server rejects it.
        timeout: Seconds per HTTP attempt.
        max_attempts: HTTP attempts per call for transient failures (429, 5xx, timeouts, dropped
            connections, 200s that are not completions).
        backoff_base: First retry delay in seconds (doubled each retry, with jitter).
        backoff_cap: Longest delay, also the cap on a server's ``Retry-After``.
        clock: The ``Clock`` whose ``sleep`` waits between attempts (``SystemClock`` by default;
            tests pass ``agentcore.testing.FakeClock``, which records each wait).
        rng: Randomness for the jitter.

    Raises:
        ConfigError: a setting is missing or invalid; the message names the variable or argument.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        tool_mode: Literal["auto", "native", "json"] = "auto",
        schema_mode: Literal["auto", "json_schema", "json_object"] = "auto",
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        resolved, self.base_url, key = endpoint(model, api_key, base_url)
        check_settings(tool_mode, schema_mode, timeout, max_attempts, backoff_base, backoff_cap)
        _check_allowed(self.base_url)
        self.model = resolved
        self.name = resolved
        self.tool_mode = tool_mode
        self.schema_mode = schema_mode
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._api_key = SecretStr(key or _NO_KEY)
        self.shown_url = shown_url(self.base_url)
        """``base_url`` as it may be shown: its password and query values as ``***`` (a proxy's credentials)."""
        self._url_secrets = url_secrets(self.base_url)
        self._backoff = RetryPolicy(base_delay=backoff_base, max_delay=backoff_cap)
        """The one backoff formula of agentcore (plan steps use it too); only its ``delay`` is used here."""
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng = rng or random.Random()
        self._json_tools = tool_mode == "json"
        """Auto mode flips this on once the server shows it ignores native tools."""
        self._schema_state: Literal["unknown", "json_schema", "json_object"] = (
            "unknown" if schema_mode == "auto" else schema_mode
        )
        self._clients: dict[asyncio.AbstractEventLoop, tuple[openai.AsyncOpenAI, AsyncGenerator[None, None]]] = {}
        """Per event loop (an httpx client belongs to the loop that first used it): the client, and
        the guard that closes it when that loop shuts down (``_close_at_shutdown``)."""
        self._clients_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.shown_url!r}, "
            f"tool_mode={self.tool_mode!r}, schema_mode={self.schema_mode!r})"
        )

    def describe(self) -> dict[str, str]:
        """Settings safe to log: model, base_url (``shown_url``), tool_mode, schema_mode (never the key)."""
        return {
            "model": self.model,
            "base_url": self.shown_url,
            "tool_mode": self.tool_mode,
            "schema_mode": self.schema_mode,
        }

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send ``request``, retrying transient failures.

        Raises:
            ConfigError: the request mixes tools and a response schema, or real requests are blocked.
            ModelRequestError: the server refused the request (4xx); the message says what to fix.
            ModelUnavailable: transient failures lasted for all ``max_attempts`` attempts.
            ModelOutputError: the server kept answering with something that is not a completion,
                the model's JSON tool decision is malformed, or the model refused (``message.refusal``
                and no answer); ``e.response`` is then the unusable answer, its ``problem`` the reason.
        """
        self._check_request(request)
        return await self._complete_with(await self._loop_client(), request)

    def complete_sync(self, request: ChatRequest) -> ChatResponse:
        """Blocking ``complete`` for scripts; must not be called from inside a running event loop.

        Raises:
            ConfigError: called inside a running event loop (use ``await model.complete(...)``).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigError(
                "OpenAIChatModel.complete_sync() was called inside a running event loop; "
                "use `await model.complete(request)` there"
            )
        self._check_request(request)

        async def run() -> ChatResponse:
            client = self._new_client()
            try:
                return await self._complete_with(client, request)
            finally:
                await client.close()

        return event_loop.run(run())

    async def aclose(self) -> None:
        """Close the HTTP connections this model opened in the running event loop.

        The model stays usable: a later call opens new connections. Without ``aclose`` the
        connections are closed when the loop shuts down (``asyncio.run`` does that); a loop closed
        without ``shutdown_asyncgens()`` leaves them to the garbage collector.
        """
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            entry = self._clients.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()  # the guard's ``finally`` closes the client

    # -- internals -------------------------------------------------------------------------------

    async def _loop_client(self) -> openai.AsyncOpenAI:
        """The running loop's client, made on first use in that loop; clients of closed loops are
        dropped untouched (their loop cannot run a close; ``asyncio.run`` ran it at shutdown)."""
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            for other in [other for other in self._clients if other is not loop and other.is_closed()]:
                del self._clients[other]
            entry = self._clients.get(loop)
            if entry is not None and not entry[0].is_closed():
                return entry[0]
            client = self._new_client()
            self._clients[loop] = (client, guard := _close_at_shutdown(client))
        await guard.__anext__()  # runs to its ``yield`` at once; the running loop now tracks it
        return client

    def _new_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key.get_secret_value(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,  # our loop retries, so that every attempt is counted and paced
            # the SDK's own httpx client, collected unclosed, closes itself on whatever loop then runs
            http_client=openai.DefaultAsyncHttpxClient(timeout=self.timeout),
        )

    def _check_request(self, request: ChatRequest) -> None:
        _check_allowed(self.base_url)
        if request.tools and request.response_schema is not None:
            raise ConfigError(
                "a ChatRequest cannot carry both tools and response_schema; "
                "use tools for the controller and response_schema for the processor/planner"
            )

    def _mode_for(self, request: ChatRequest) -> StructuredMode:
        if request.tools:
            return "json_decision" if self._json_tools else "native_tools"
        if request.response_schema is not None:
            return "json_object" if self._schema_state == "json_object" else "json_schema"
        return "text"

    def _body(self, request: ChatRequest, mode: StructuredMode) -> dict[str, Any]:
        messages = llm_wire.wire_messages(request.messages, json_tools=mode == "json_decision")
        body: dict[str, Any] = {"model": self.model}
        if mode == "native_tools":
            body["tools"] = llm_wire.wire_tools(request.tools)
            if self.tool_mode == "auto":  # names the tools even if the server drops ``tools``
                messages = llm_wire.with_system_text(messages, llm_wire.auto_tools_note(request.tools))
        elif mode == "json_decision":
            messages = llm_wire.with_system_text(messages, llm_wire.json_tools_instructions(request.tools))
        elif mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.response_schema, "strict": False},
            }
        elif mode == "json_object":
            assert request.response_schema is not None
            text = llm_wire.json_schema_instructions(request.schema_name, request.response_schema)
            messages = llm_wire.with_system_text(messages, text)
            body["response_format"] = {"type": "json_object"}
        body["messages"] = messages
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return body

    async def _complete_with(self, client: openai.AsyncOpenAI, request: ChatRequest) -> ChatResponse:
        mode = self._mode_for(request)
        attempts = failures = 0
        limit = self.max_attempts
        last_invalid = False
        while True:
            attempts += 1
            delay: float | None = None
            try:
                raw = await client.chat.completions.with_raw_response.create(**self._body(request, mode))
                parsed = llm_wire.parse_completion(raw.text)
            except openai.APIStatusError as e:
                body_text = self.redact(e.response.text if e.response is not None else str(e.body))
                if (
                    mode == "json_schema"
                    and self._schema_state == "unknown"
                    and llm_wire.is_schema_rejection(e.status_code, body_text)
                ):
                    self._schema_state = "json_object"
                    mode = "json_object"
                    limit += 1  # the fallback is not a failure of the retry budget
                    continue
                if e.status_code < 500 and e.status_code not in _RETRYABLE_4XX:
                    raise self._request_error(e, body_text) from self._safe_cause(e)
                cause = f"HTTP {e.status_code}: {llm_wire.server_message(e.body, body_text)}"
                if e.status_code == 429:
                    retry_after = llm_wire.retry_after_seconds(
                        dict(e.response.headers), now=self._clock.now().timestamp()
                    )
                    if retry_after is not None:
                        delay = min(retry_after, self.backoff_cap)
                last_invalid = False
            except openai.APITimeoutError:
                cause, last_invalid = f"no answer within the {self.timeout}s timeout", False
            except openai.APIConnectionError as e:
                detail = e.__cause__ or e
                cause = self.redact(f"connection failed ({type(detail).__name__}: {detail})")
                last_invalid = False
            except llm_wire.InvalidCompletion as e:
                cause, last_invalid = f"HTTP 200 but the body is not a chat completion: {e}", True
            else:
                return self._finish(parsed, mode, attempts)
            failures += 1
            if attempts >= limit:
                where = f"model {self.model!r} at {self.shown_url}"
                if last_invalid:
                    problem = f"{where}: {self.redact(cause)} (after {attempts} attempts)"
                    unusable = ChatResponse(
                        content=None, model=self.model, attempts=attempts, structured_mode=mode, problem=problem
                    )
                    raise ModelOutputError(problem, response=unusable)
                raise ModelUnavailable(
                    f"{where} unavailable after {attempts} attempts; last failure: {self.redact(cause)}"
                )
            if delay is None:
                delay = self._backoff.delay(failures, self._rng)
            await self._clock.sleep(delay)

    def _finish(self, parsed: llm_wire.ParsedCompletion, mode: StructuredMode, attempts: int) -> ChatResponse:
        # a server or proxy may echo the Authorization header in a 200: the key never leaves here
        content = self.redact(parsed.content) if parsed.content is not None else None
        calls = [(self.redact(i), self.redact(n), self.redact(a)) for i, n, a in parsed.tool_calls]
        if mode == "native_tools" and not calls and self.tool_mode == "auto":
            if looks_like_json_decision(content):
                self._json_tools = True  # e.g. llama-server: no tool_calls, the decision comes as text
                mode = "json_decision"
        problem: str | None = None
        if mode == "json_decision":
            try:
                calls, content = parse_json_decision(content)
            except ValueError as e:  # the answer keeps its text, so the record and the re-ask show it
                problem = f"the model's tool decision is malformed: {e}"
        elif mode in ("json_schema", "json_object") and content is not None:
            content = strip_fences(content)
            if mode == "json_schema" and self._schema_state == "unknown":
                self._schema_state = "json_schema"  # confirmed: later 500s are transient, not rejections
        if problem is None and parsed.refusal is not None and not calls and not (content or "").strip():
            problem = (
                f"the model refused to answer: {clip(self.redact(parsed.refusal), 500)!r}; "
                "answer as asked, or reply saying why it cannot be done"
            )
        response = ChatResponse(
            content=content,
            tool_calls=() if problem else tuple(ToolCallRequest(id=i, name=n, arguments=a) for i, n, a in calls),
            usage=TokenUsage(**parsed.usage),
            model=self.redact(parsed.model) or self.model,
            finish_reason=self.redact(parsed.finish_reason) if parsed.finish_reason is not None else None,
            attempts=attempts,
            structured_mode=mode,
            problem=problem,
        )
        if problem is not None:
            raise ModelOutputError(problem, response=response)
        return response

    def _request_error(self, e: openai.APIStatusError, body_text: str) -> ModelRequestError:
        said = self.redact(llm_wire.server_message(e.body, body_text))
        hint = llm_wire.request_error_hint(e.status_code, base_url=self.shown_url, model=self.model)
        return ModelRequestError(f"{hint}. Server said: {said}", status_code=e.status_code)

    def redact(self, text: str) -> str:
        """``text`` with the configured API key (from ``api_key=`` or ``OPENAI_API_KEY``) and the
        base URL's password and query values replaced by ``[redacted]``; applied to everything this
        model returns or raises."""
        key = self._api_key.get_secret_value()  # kept in the SecretStr, never in a plain attribute
        return redact_secrets(text, [*self._url_secrets, *([key] if key != _NO_KEY else [])])

    def _safe_cause(self, e: BaseException) -> BaseException | None:
        """``e`` for exception chaining, or None when its text carries the API key."""
        key = self._api_key.get_secret_value()
        text = str(e) + repr(getattr(e, "body", ""))
        return None if key != _NO_KEY and key in text else e
