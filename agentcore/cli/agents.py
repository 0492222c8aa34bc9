"""Building agents for the CLI: models from the environment, the code-search agent, and the agent of a stored run.

No click or rich here, so these helpers are usable from Python too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, TextIO

from agentcore.core.events import RunStarted
from agentcore.errors import ConfigError
from agentcore.models.base import ChatModel
from agentcore.models.offline import OFFLINE_MODEL_NAME, OfflineCodeModel
from agentcore.roles.validators import cites_a_known_location
from agentcore.runtime.agent import Agent
from agentcore.storage.base import EventStore
from agentcore.storage.trace import was_imported
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.code.index import Progress


def offline_wanted(offline: bool) -> bool:
    """The offline model runs when asked for, or when no model server is configured."""
    return offline or not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def make_models(
    model: str | None,
    processor_model: str | None,
    offline: bool,
    *,
    tool_mode: str = "auto",
    schema_mode: str = "auto",
) -> tuple[ChatModel, ChatModel]:
    """Controller and processor models: the offline one, or OpenAI-compatible ones from the environment.

    ``tool_mode`` (``auto``, ``native``, ``json``) and ``schema_mode`` (``auto``, ``json_schema``,
    ``json_object``) choose how structured output is asked for; ``auto`` detects what the server
    supports (see ``OpenAIChatModel``).
    """
    if offline_wanted(offline):
        m = OfflineCodeModel()
        return m, m
    from agentcore.models.openai import OpenAIChatModel  # imports openai: only when a server is used

    options: Any = {"tool_mode": tool_mode, "schema_mode": schema_mode}
    controller = OpenAIChatModel(model, **options)
    processor = OpenAIChatModel(processor_model, **options) if processor_model else controller
    return controller, processor


class IndexProgress:
    """Shows how far the code index build is, on ``stream`` (stderr): one line redrawn on a terminal,
    else a line at every tenth. Builds of fewer than ``min_files`` files are not shown."""

    def __init__(self, stream: TextIO, *, terminal: bool, min_files: int = 100) -> None:
        self.stream = stream
        self.terminal = terminal
        self.min_files = min_files
        self._last = (-1.0, -1, -1)

    def __call__(self, done: int, total: int) -> None:
        if total < self.min_files or done == self._last[2]:
            return
        now, tenth = time.monotonic(), done * 10 // total
        if done < total and (now - self._last[0] < 0.1 if self.terminal else tenth == self._last[1]):
            return
        self._last = (now, tenth, done)
        text = f"indexing the repository for code search: {done}/{total} files ({done * 100 // total}%)"
        if self.terminal:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def code_agent(
    repo: str,
    store: EventStore,
    controller: ChatModel,
    processor: ChatModel,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> Agent:
    """The code-search agent over ``repo``; its set-up is recorded so ``resume`` can rebuild it.
    ``progress(done, total)`` is told how far an index build is (see ``IndexProgress``)."""
    root = str(Path(repo).resolve())
    return Agent(
        controller,
        processor,
        code_tools(root, progress=progress),
        store,
        metadata={"toolkit": "code", "repo": root},
        reply_validators=[cites_a_known_location],
        **options,
    )


def started_event(store: EventStore, run_id: str) -> RunStarted:
    for e in store.read(run_id, upto=1):
        if isinstance(e, RunStarted):
            return e
    raise ConfigError(
        f"run {run_id!r} has not started yet (it has no events): a run queued by `agentcore submit` is started "
        f"by a worker (`agentcore worker`); `agentcore wait {run_id}` waits for it"
    )


def agent_for_run(
    store: EventStore,
    run_id: str,
    offline: bool = False,
    *,
    model: str | None = None,
    max_steps: int | None = None,
    repo: str | None = None,
) -> Agent:
    """Rebuild the agent a recorded run was made with (code-search runs recorded by ``ask``).

    ``model`` replaces the recorded controller model (and the processor model, when they were the
    same); ``max_steps`` replaces the recorded step budget; ``repo`` the recorded repository. A run
    imported from a trace (or forked from one) needs ``repo``: a repository recorded in a file made
    elsewhere is only shown, never used to choose what the tools read.

    Raises:
        ConfigError: the run was not made by ``ask``, or it was imported and ``repo`` is not given.
    """
    config = started_event(store, run_id).run_config()
    meta = config.metadata
    recorded_repo = meta.get("repo")
    if meta.get("toolkit") != "code" or not isinstance(recorded_repo, str) or not recorded_repo:
        raise ConfigError(
            f"run {run_id!r} was not made by `agentcore ask`, so the CLI cannot rebuild its agent; "
            "resume it from Python with the same Agent (agent.resume_sync(run_id))"
        )
    if repo is None and was_imported(store, run_id):
        raise ConfigError(
            f"run {run_id!r} was imported from a trace file; its recorded repository {recorded_repo!r} is not "
            "used, since a file made elsewhere must not choose what the tools read: pass --repo PATH"
        )
    names = config.controller_model, config.processor_model
    if model:
        names = model, (model if names[1] in (None, names[0]) or names[1] == OFFLINE_MODEL_NAME else names[1])
    controller: ChatModel
    processor: ChatModel
    if offline or (not model and OFFLINE_MODEL_NAME in names):
        controller = processor = OfflineCodeModel()
    else:
        from agentcore.models.openai import OpenAIChatModel  # imports openai: only when a server is used

        controller = OpenAIChatModel(names[0])
        processor = OpenAIChatModel(names[1]) if names[1] and names[1] != names[0] else controller
    keys = ("max_steps", "max_tokens", "prices") + (() if offline else ("max_cost_usd",))
    recorded = config.model_dump()
    budgets = {k: recorded[k] for k in keys if recorded.get(k) is not None}
    if max_steps is not None:
        budgets["max_steps"] = max_steps
    return code_agent(repo or recorded_repo, store, controller, processor, **budgets)


def ask_app(store: EventStore, spec: dict[str, Any]) -> Agent:
    """The default app of ``agentcore worker``: the code-search agent a ``submit`` spec describes.

    ``spec``: ``{"repo": PATH, "model": NAME | None, "processor_model": NAME | None,
    "offline": bool, "max_steps": int}`` (what ``agentcore submit`` writes). Models come from this
    worker's environment (``OPENAI_API_KEY``/``OPENAI_BASE_URL``), never from the queue; a run that
    names a model is refused (``ConfigError``) by a worker without them, instead of being answered by
    the offline model.
    """
    repo = spec.get("repo")
    if not isinstance(repo, str) or not repo:
        raise ConfigError(f"this queued run has no repo in its spec ({spec!r}): submit it with --repo PATH")
    model, processor_model, offline = spec.get("model"), spec.get("processor_model"), bool(spec.get("offline"))
    if (model or processor_model) and offline_wanted(offline) and not offline:
        raise ConfigError(  # never answer a run that named its model with the offline one
            f"this run asks for the model {model or processor_model!r}, but this worker has no model server: set "
            "OPENAI_API_KEY (and OPENAI_BASE_URL) in the worker's environment, or submit the run with --offline"
        )
    controller, processor = make_models(model, processor_model, offline)
    return code_agent(repo, store, controller, processor, max_steps=int(spec.get("max_steps") or 12))
