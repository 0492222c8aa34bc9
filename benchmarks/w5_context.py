"""W5 — context bound: the controller's prompt does not grow with the size of tool outputs (see WORKLOADS.md).

A real code-search run (``Agent``, a file-backed ``SQLiteEventStore``, the ``OfflineCodeModel`` as
controller and processor, the real code tools of ``code_tools``) answers "Where is TAX_RATE used?" on
a small repository. Every tool is wrapped (``inflated``) so that whichever tool the model chooses
runs for real and its raw output (the artifact the runner stores) is the real result plus filler up
to 10 KB, 1 MB or 50 MB; what the controller is shown of it is the real result's own payload, so the
run takes the same path at every size and the harness does not depend on which tool the model calls.
The controller's requests are measured as the model receives them: ``prompt_bytes_*`` is the largest
request over the run's controller steps, in UTF-8 bytes of the canonical JSON of the ``ChatRequest``
(messages and tool specs). Per-step sizes are under ``steps_*``, the largest raw output's stored size
under ``raw_bytes_*``, the tools called under ``tools_*``. No tokenizer is installed here, so no
token counts are reported.

The run is deterministic, so ``repeat`` only re-checks that sizes are identical from run to run.

Run: ``python benchmarks/run.py W5``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic_core import to_jsonable_python

from agentcore.core.values import canonical_json
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.payloads import StoredOutput, render_payload

PAYLOAD_CHARS = 2000
TOP_K = 10

SIZES = {"10kb": 10 * 1024, "1mb": 1024 * 1024, "50mb": 50 * 1024 * 1024}
QUESTION = "Where is TAX_RATE used?"
REPO = {
    "shop/cart.py": "TAX_RATE = 0.2\n\n\ndef apply_tax(amount):\n    return amount * (1 + TAX_RATE)\n",
    "README.md": "# shop\n\nPrices include TAX_RATE.\n",
}


class MeasuredModel:
    """Wraps a model and records the size of every controller request it receives."""

    def __init__(self, inner: OfflineCodeModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.controller_bytes: list[int] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.role == "controller":
            self.controller_bytes.append(len(canonical_json(request.model_dump(mode="json")).encode("utf-8")))
        return await self.inner.complete(request)


@dataclasses.dataclass(frozen=True)
class Inflated:
    """A tool's real result with filler: stored whole (about ``target`` bytes), shown as the result alone."""

    result: Any
    filler: str


def inflated(real: Tool, target: int) -> Tool:
    """``real`` whose raw output is its real result plus filler up to ``target`` bytes (or just over)."""

    def pad(result: Any) -> Inflated:
        line = "    total = price * (1 + TAX_RATE)  # " + "x" * 160 + "\n"
        return Inflated(result, line * max(1, -(-target // len(line))))

    if real.is_async:

        async def call_async(**kwargs: Any) -> Inflated:
            return pad(await real.fn(**kwargs))

        fn: Any = call_async
    else:

        def call(**kwargs: Any) -> Inflated:
            return pad(real.fn(**kwargs))

        fn = call

    def shown(value: Inflated) -> str:  # what the runner would show of the real result (payloads.render_payload)
        inner = value.result
        if inner is None or isinstance(inner, (bytes, bytearray)):
            out = StoredOutput(inner, None, None, None)
        elif isinstance(inner, str):
            out = StoredOutput(inner, None, inner, None)
        else:
            jsonable = to_jsonable_python(inner, serialize_unknown=True)
            out = StoredOutput(inner, None, canonical_json(jsonable), jsonable if isinstance(jsonable, list) else None)
        return render_payload(
            out, payload_chars=PAYLOAD_CHARS, top_k=TOP_K, summarize=real.summarize, tool_top_k=real.top_k
        )

    return dataclasses.replace(real, fn=functools.wraps(real.fn)(fn), summarize=shown)


def one_run(size: int, folder: Path) -> dict[str, Any]:
    root = folder / "repo"
    for rel, text in REPO.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    tools = [inflated(t, size) for t in code_tools(root)]
    model = MeasuredModel(OfflineCodeModel())
    with SQLiteEventStore(folder / "w5.db") as store:
        result = Agent(model, model, tools, store).run_sync(QUESTION)
        if result.status != "succeeded":
            raise RuntimeError(f"the W5 run did not succeed: {result.reason}")
        names = {t.name for t in tools}
        done = [
            e for e in store.read(result.run_id) if getattr(e, "name", None) in names and getattr(e, "artifact", None)
        ]
    if not done:
        raise RuntimeError("the W5 run called no tool, so no raw output was measured")
    return {
        "steps": model.controller_bytes, "raw": max(e.artifact.size for e in done),
        "tools": [e.name for e in done], "reply": result.reply,
    }  # fmt: skip


def run(n: int | None, repeat: int) -> dict[str, Any]:
    """Controller prompt bytes per step for raw search outputs of 10 KB, 1 MB and 50 MB (``n`` is unused)."""
    out: dict[str, Any] = {}
    for label, size in SIZES.items():
        seen = []
        for _ in range(max(1, repeat)):
            with tempfile.TemporaryDirectory() as tmp:
                seen.append(one_run(size, Path(tmp)))
        if any(s["steps"] != seen[0]["steps"] for s in seen):
            raise RuntimeError(f"prompt sizes changed between identical runs: {[s['steps'] for s in seen]}")
        out[f"prompt_bytes_{label}"] = max(seen[0]["steps"])
        out[f"steps_{label}"] = seen[0]["steps"]
        out[f"raw_bytes_{label}"] = seen[0]["raw"]
        out[f"tools_{label}"] = seen[0]["tools"]
    base = out["prompt_bytes_10kb"]
    out["growth_10kb_to_50mb"] = round(out["prompt_bytes_50mb"] / base, 4)
    return out


if __name__ == "__main__":
    print(json.dumps(run(None, 1), indent=2))
