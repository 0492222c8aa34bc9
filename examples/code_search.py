"""The code-search agent of `agentcore ask`, from Python: python examples/code_search.py REPO "QUESTION" [DB].

Uses the model server in OPENAI_BASE_URL / OPENAI_API_KEY (model: $AGENTCORE_MODEL) when one is
set, else the built-in offline model. Every step is stored in DB (default: code_search.db).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agentcore import Agent, OfflineCodeModel, OpenAIChatModel, SQLiteEventStore, code_tools


def main(repo: str, question: str, db: str = "code_search.db") -> int:
    online = os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")
    model = OpenAIChatModel() if online else OfflineCodeModel()
    root = str(Path(repo).resolve())
    with SQLiteEventStore(db) as store:
        agent = Agent(model, model, code_tools(root), store, metadata={"toolkit": "code", "repo": root})
        result = agent.run_sync(question)
        print(result.reply if result.status == "succeeded" else f"run {result.status}: {result.reason}")
        for fact in result.state.known_facts.values():
            print(f"- {fact.key}: {fact.value} (tool call {fact.source}, artifact {fact.artifact_id})")
        print(f"run {result.run_id} stored in {db}")
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
