"""W5 — context bound: the controller's prompt does not grow with the size of tool outputs (see WORKLOADS.md).

A real code-search run (``Agent``, a file-backed ``SQLiteEventStore``, the ``OfflineCodeModel`` as
controller and processor, the real ``find_definition``/``read_file``/``list_files`` of
``code_tools``) answers "Where is TAX_RATE used?" on a small repository. Its ``search_code`` is a
stand-in with the real tool's name, parameters and result type: it returns a ``SearchResult`` whose
stored JSON (the raw output, kept whole as an artifact) is 10 KB, 1 MB or 50 MB. The controller's
requests are measured as the model receives them: ``prompt_bytes_*`` is the largest request over
the run's controller steps, in UTF-8 bytes of the canonical JSON of the ``ChatRequest`` (messages and
tool specs). Per-step sizes are under ``steps_*``, the raw output's stored size under ``raw_bytes_*``.
No tokenizer is installed here, so no token counts are reported.

The run is deterministic, so ``repeat`` only re-checks that sizes are identical from run to run.

Run: ``python benchmarks/run.py W5``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.core.values import canonical_json
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.code.models import CodeMatch, SearchResult

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


def sized_search(target: int) -> Tool:
    """A ``search_code`` whose raw output (canonical JSON of its ``SearchResult``) is ``target`` bytes or just over."""

    @tool
    def search_code(query: str, regex: bool = False, glob: str | None = None, max_results: int = 20) -> SearchResult:
        """Search the text of every file in the repository (respects .gitignore, skips binary files).

        Args:
            query: The text to look for (a literal string unless regex is true).
            regex: Treat query as a regular expression (Rust/ripgrep syntax).
            glob: Only search files whose path matches this glob, e.g. "**/*.go".
            max_results: How many matches to show in the result (all are counted and stored).
        """
        text = "    total = price * (1 + TAX_RATE)  # " + "x" * 160
        one = len(canonical_json(CodeMatch(path="src/gen/m0000.py", line=1, text=text).model_dump())) + 1
        count = max(1, -(-target // one))
        matches = tuple(
            CodeMatch(path=f"src/gen/m{i // 1000:04d}.py", line=i % 1000 + 1, text=text) for i in range(count)
        )
        return SearchResult(
            mode="regex" if regex else "text", query=query, glob=glob, engine="ripgrep",
            matches=matches, total=count, max_results=max_results,
        )  # fmt: skip

    return search_code


def one_run(size: int, folder: Path) -> dict[str, Any]:
    root = folder / "repo"
    for rel, text in REPO.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    tools = [t for t in code_tools(root) if t.name != "search_code"] + [sized_search(size)]
    model = MeasuredModel(OfflineCodeModel())
    with SQLiteEventStore(folder / "w5.db") as store:
        result = Agent(model, model, tools, store).run_sync(QUESTION)
        if result.status != "succeeded":
            raise RuntimeError(f"the W5 run did not succeed: {result.reason}")
        raw = [e.artifact.size for e in store.read(result.run_id) if getattr(e, "name", None) == "search_code"]
    return {"steps": model.controller_bytes, "raw": raw[0], "reply": result.reply}


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
    base = out["prompt_bytes_10kb"]
    out["growth_10kb_to_50mb"] = round(out["prompt_bytes_50mb"] / base, 4)
    return out


if __name__ == "__main__":
    print(json.dumps(run(None, 1), indent=2))
