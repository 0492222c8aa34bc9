"""The offline code-search model, driven through the real runtime, real code tools and a real SQLite file.

Every answer is checked twice: the location the reply cites, and the fact behind it (its source is
the tool call that produced it, its artifact is stored and holds the cited line as it is on disk).
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agentcore.core.events import RunStarted, StatePatched, ToolFinished
from agentcore.core.fold import Fact, fold
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.errors import ModelOutputError
from agentcore.models.base import ChatMessage, ChatRequest
from agentcore.models.offline import Intent, OfflineCodeModel, classify
from agentcore.roles.controller import build_controller_request
from agentcore.runtime.agent import Agent, RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code.agent_tools import code_tools
from tests.support.code_fixtures import GO_DEFINITIONS, PYTHON_DEFINITIONS, make_go_repo, make_python_repo

AGENTCORE_ROOT = Path(__file__).resolve().parents[2]
LOCATION = re.compile(r"[\w./-]+\.\w+:\d+")

UNSEEN_FILES = {
    "web/src/lib/format.ts": """
        // Formatting helpers.
        export interface Formatter {
          format(value: number): string;
        }

        export function formatPrice(value: number): string {
          return `$${value.toFixed(2)}`;
        }

        export class EuroFormatter implements Formatter {
          format(value: number): string {
            return `${value.toFixed(2)} EUR`;
          }
        }
    """,
    "web/src/app.js": """
        import { formatPrice, EuroFormatter } from "./lib/format";

        const euro = new EuroFormatter();
        export const renderTotal = (total) => formatPrice(total);
        console.log(euro.format(3), renderTotal(4));
    """,
    "jobs/report.py": '''
        """Nightly report."""


        def build_report(rows):
            return [format_row(r) for r in rows]


        def format_row(row):
            return ", ".join(map(str, row))
    ''',
}


# ------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("repos")
    unseen = base / "unseen"
    for rel, text in UNSEEN_FILES.items():
        target = unseen / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return {"python": make_python_repo(base / "py"), "go": make_go_repo(base / "go"), "unseen": unseen}



def ask(store: SQLiteEventStore, root: Path, question: str) -> RunResult:
    model = OfflineCodeModel()
    result = Agent(model, model, code_tools(root), store).run_sync(question)
    assert result.status == "succeeded", result.reason
    assert result.reply
    return result


def source_line(root: Path, path: str, line: int) -> str:
    return (root / path).read_text(encoding="utf-8").splitlines()[line - 1]


def word_lines(root: Path, word: str, ignored: tuple[str, ...] = ()) -> list[str]:
    """Every ``path:line`` where ``word`` occurs as a whole word (what a usage search must find)."""
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    found = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        if rel.startswith(ignored) or rel.endswith(".log") or rel == ".gitignore":
            continue
        for n, text in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(text):
                found.append(f"{rel}:{n}")
    return found


def assert_backed(store: SQLiteEventStore, result: RunResult, fact: Fact, root: Path, path: str, line: int) -> None:
    """``fact`` cites ``path:line``; its source is a finished tool call whose artifact holds that line."""
    assert f"{path}:{line}" in fact.value
    finished = [e for e in store.read(result.run_id) if isinstance(e, ToolFinished) and e.call_id == fact.source]
    assert len(finished) == 1, f"fact source {fact.source!r} is not a tool call of the run"
    assert finished[0].ok
    assert finished[0].artifact is not None and finished[0].artifact.id == fact.artifact_id
    assert store.artifacts.exists(fact.artifact_id)
    doc = store.artifacts.get_json(fact.artifact_id)
    expected = source_line(root, path, line)
    if "definitions" in doc:  # find_definition
        hits = [d for d in doc["definitions"] if d["path"] == path and d["line"] == line]
        assert hits and hits[0]["signature"] == expected.strip()
    elif "calls" in doc:  # find_references: the site is listed under one kind, with its text
        sites = [s for k in ("calls", "imports", "attributes", "mentions") for s in doc[k]]
        hits = [s for s in sites if s["path"] == path and s["line"] == line]
        assert hits and hits[0]["text"] in ("", expected.strip())
    elif "entries" in doc:  # outline
        assert doc["path"] == path
        hits = [e for e in doc["entries"] if e["line"] == line]
        assert hits and hits[0]["name"] in expected
    else:  # a search result
        hits = [m for m in doc["matches"] if m["path"] == path and m["line"] == line]
        assert hits and hits[0]["text"].strip() == expected.strip()


def code_uses(root: Path, word: str, definition: str) -> set[str]:
    """Every ``path:line`` of a code file that uses ``word`` outside a comment, the definition left out."""
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    found = set()
    for use in word_lines(root, word, ignored=("build/",)):
        rel, n = use.rsplit(":", 1)
        if not rel.endswith((".py", ".go", ".js", ".ts")) or use == definition:
            continue
        code = re.split(r"#|//", source_line(root, rel, int(n)))[0]
        if pattern.search(code):
            found.add(use)
    return found


def only_fact(result: RunResult, key: str) -> Fact:
    assert key in result.state.known_facts, sorted(result.state.known_facts)
    return result.state.known_facts[key]


# ------------------------------------------------------------------------------------------------
# reading the question


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("Where is ClientError defined?", Intent("definition", "ClientError")),
        ("where's the PriceError class declared", Intent("definition", "PriceError")),
        ("Where is `fetch_rates` defined?", Intent("definition", "fetch_rates")),
        ("Find the definition of parse_config()", Intent("definition", "parse_config")),
        ("Who calls apply_tax?", Intent("usage", "apply_tax")),
        ("Where is TAX_RATE used?", Intent("usage", "TAX_RATE")),
        ("Which functions use `DEFAULT_CURRENCY`?", Intent("usage", "DEFAULT_CURRENCY")),
        ("What does shop/pricing.py contain?", Intent("file", "shop/pricing.py")),
        ("what is in `client/errors.go`?", Intent("file", "client/errors.go")),
        ("Tell me about NewClient", Intent("search", "NewClient")),
    ],
)
def test_classify_reads_kind_and_subject(question: str, intent: Intent) -> None:
    assert classify(question) == intent


def test_offline_model_refuses_roles_it_does_not_play() -> None:
    request = ChatRequest(role="planner", messages=(ChatMessage(role="user", content="plan it"),))
    with pytest.raises(ModelOutputError, match="planner"):
        asyncio.run(OfflineCodeModel().complete(request))


# ------------------------------------------------------------------------------------------------
# definitions on the fixture repos


def test_a_clipped_fact_is_cut_back_to_whole_items_from_inputs_or_from_the_prompt_alone() -> None:
    """The view clips a long fact value; the model cuts it back to its last whole item, whether it
    reads the structured count (``inputs``) or only the prompt text (a model behind HTTP)."""
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    places = "; ".join(f"pkg/mod{i}.py:{i}" for i in range(60))
    fact = FactInput(key="definition:Widget", value=f"Widget is defined at {places}", source="d1_call_1")
    state = fold([RunStarted(run_id="r", seq=1, at=at, task="where is Widget defined"),
                  StatePatched(run_id="r", seq=2, at=at, ops=(AppendKnownFacts(facts=(fact,)),))])  # fmt: skip
    request = build_controller_request(state, [])
    assert "more chars not shown" in "".join(m.content or "" for m in request.messages)
    replies = [
        asyncio.run(OfflineCodeModel().complete(r)).content or ""
        for r in (request, request.model_copy(update={"inputs": {}}))
    ]
    assert replies[0] == replies[1]
    assert "pkg/mod0.py:0" in replies[0] and "(and more)" in replies[0]
    assert "more chars not shown" not in replies[0] and "pkg/mod59.py" not in replies[0]


@pytest.mark.parametrize(("kind", "table"), [("python", PYTHON_DEFINITIONS), ("go", GO_DEFINITIONS)])
def test_every_fixture_definition_is_found_and_cited(
    store: SQLiteEventStore, repos: dict[str, Path], kind: str, table: dict[str, tuple[str, int]]
) -> None:
    root = repos[kind]
    for symbol, (path, line) in table.items():
        result = ask(store, root, f"Where is {symbol} defined?")
        first = LOCATION.search(result.reply or "")
        assert first and first.group(0) == f"{path}:{line}", (symbol, result.reply)
        assert_backed(store, result, only_fact(result, f"definition:{symbol}"), root, path, line)


@pytest.mark.parametrize(
    ("question", "symbol"),
    [
        ("where's the PriceError class declared", "PriceError"),
        ("Where is `fetch_rates` defined?", "fetch_rates"),
        ("Where is the Cart class defined in this repo?", "Cart"),
        ("find apply_tax", "apply_tax"),
    ],
)
def test_definition_phrasings(store: SQLiteEventStore, repos: dict[str, Path], question: str, symbol: str) -> None:
    root = repos["python"]
    path, line = PYTHON_DEFINITIONS[symbol]
    result = ask(store, root, question)
    assert (LOCATION.search(result.reply or "") or [None])[0] == f"{path}:{line}"
    assert_backed(store, result, only_fact(result, f"definition:{symbol}"), root, path, line)
    # a definition question is answered from find_definition alone: no search was needed
    assert [e.name for e in store.read(result.run_id) if isinstance(e, ToolFinished)] == ["find_definition"]


# ------------------------------------------------------------------------------------------------
# usages


@pytest.mark.parametrize(
    ("kind", "question", "symbol"),
    [
        ("python", "Who calls apply_tax?", "apply_tax"),
        ("python", "Where is TAX_RATE used?", "TAX_RATE"),
        ("python", "Which functions use `DEFAULT_CURRENCY`?", "DEFAULT_CURRENCY"),
        ("go", "Who calls NewClient?", "NewClient"),
        ("go", "Where is the Doer interface used?", "Doer"),
    ],
)
def test_usage_questions_cite_every_use(
    store: SQLiteEventStore, repos: dict[str, Path], kind: str, question: str, symbol: str
) -> None:
    root = repos[kind]
    table = PYTHON_DEFINITIONS if kind == "python" else GO_DEFINITIONS
    path, line = table[symbol]
    result = ask(store, root, question)
    uses = code_uses(root, symbol, f"{path}:{line}")
    assert uses, "the fixture should use the symbol somewhere"
    reply = result.reply or ""
    first, _, rest = reply.partition("\n")
    assert LOCATION.findall(first)[0] == f"{path}:{line}"  # the definition is named first
    assert set(LOCATION.findall(rest)) == uses
    usages = only_fact(result, f"usages:{symbol}")
    assert f"{symbol} has {len(uses)} use{'s' if len(uses) != 1 else ''} in " in usages.value
    for use in uses:
        use_path, use_line = use.rsplit(":", 1)
        assert_backed(store, result, usages, root, use_path, int(use_line))
    assert_backed(store, result, only_fact(result, f"definition:{symbol}"), root, path, line)


def test_a_symbol_used_only_where_it_is_defined(store: SQLiteEventStore, repos: dict[str, Path]) -> None:
    root = repos["unseen"]
    result = ask(store, root, "Where is `build_report` used?")
    assert "no uses of 'build_report' found" in (result.reply or "")
    assert_backed(store, result, only_fact(result, "definition:build_report"), root, "jobs/report.py", 4)


# ------------------------------------------------------------------------------------------------
# files


@pytest.mark.parametrize(
    ("kind", "question", "path", "defined"),
    [
        ("python", "What does shop/pricing.py contain?", "shop/pricing.py", ["PriceError", "fetch_rates"]),
        ("go", "what is in `client/errors.go`?", "client/errors.go", ["ClientError", "Error"]),
        ("unseen", "Show me web/src/lib/format.ts", "web/src/lib/format.ts", ["Formatter", "formatPrice"]),
    ],
)
def test_file_questions_list_the_definitions_with_lines(
    store: SQLiteEventStore, repos: dict[str, Path], kind: str, question: str, path: str, defined: list[str]
) -> None:
    root = repos[kind]
    result = ask(store, root, question)
    lines = (root / path).read_text(encoding="utf-8").splitlines()
    assert f"{path} has {len(lines)} lines" in (result.reply or "")
    fact = only_fact(result, f"file:{path}")
    for name in defined:
        line = next(
            n
            for n, text in enumerate(lines, 1)
            if re.search(rf"\b(class|def|func|type|interface|function)\b.*\b{name}\b", text)
            and not text.lstrip().startswith(("//", "#"))
        )
        assert f"{name} ({path}:{line})" in (result.reply or "")
        assert_backed(store, result, fact, root, path, line)


# ------------------------------------------------------------------------------------------------
# repositories the model has never seen


@pytest.mark.parametrize(
    ("question", "symbol", "path"),
    [
        ("Where is formatPrice defined?", "formatPrice", "web/src/lib/format.ts"),
        ("where's the EuroFormatter class declared", "EuroFormatter", "web/src/lib/format.ts"),
        ("Where is the Formatter interface defined?", "Formatter", "web/src/lib/format.ts"),
        ("Where is renderTotal defined?", "renderTotal", "web/src/app.js"),
        ("Where is `format_row` defined?", "format_row", "jobs/report.py"),
    ],
)
def test_unseen_js_ts_python_repo(
    store: SQLiteEventStore, repos: dict[str, Path], question: str, symbol: str, path: str
) -> None:
    root = repos["unseen"]
    text = (root / path).read_text(encoding="utf-8").splitlines()
    line = next(n for n, t in enumerate(text, 1) if re.search(rf"\b(function|class|interface|const|def) {symbol}\b", t))
    result = ask(store, root, question)
    assert (LOCATION.search(result.reply or "") or [None])[0] == f"{path}:{line}"
    assert_backed(store, result, only_fact(result, f"definition:{symbol}"), root, path, line)


def test_unseen_repo_usage_across_languages(store: SQLiteEventStore, repos: dict[str, Path]) -> None:
    root = repos["unseen"]
    result = ask(store, root, "Who calls formatPrice?")
    uses = word_lines(root, "formatPrice")
    assert "web/src/app.js:4" in uses
    for use in uses:
        assert use in (result.reply or "")
    assert_backed(store, result, only_fact(result, "usages:formatPrice"), root, "web/src/app.js", 4)


def test_agentcore_own_source_tree(store: SQLiteEventStore) -> None:
    lines = (AGENTCORE_ROOT / "agentcore" / "core" / "state.py").read_text(encoding="utf-8").splitlines()
    line = next(n for n, t in enumerate(lines, 1) if re.match(r"class RunState\b", t))
    result = ask(store, AGENTCORE_ROOT, "Where is RunState defined?")
    assert (LOCATION.search(result.reply or "") or [None])[0] == f"agentcore/core/state.py:{line}"
    fact = only_fact(result, "definition:RunState")
    assert_backed(store, result, fact, AGENTCORE_ROOT, "agentcore/core/state.py", line)


# ------------------------------------------------------------------------------------------------
# nothing to find


@pytest.mark.parametrize("question", ["Where is {name} defined?", "Who calls {name}?", "where's the `{name}` class"])
def test_unknown_symbol_says_nothing_was_found(store: SQLiteEventStore, repos: dict[str, Path], question: str) -> None:
    name = "Zq" + "NoSuchSymbol" + "Xv"  # built here so that no file, this one included, spells it
    for root in (repos["python"], repos["go"]):
        result = ask(store, root, question.format(name=name))
        reply = result.reply or ""
        assert f"no definition of '{name}' found" in reply
        assert f"'{name}' does not appear anywhere in the files" in reply
        assert not LOCATION.search(reply), f"invented a location: {reply}"
        for fact in result.state.known_facts.values():
            assert not LOCATION.search(fact.value)
            assert fact.artifact_id and store.artifacts.exists(fact.artifact_id)


def test_missing_file_is_reported_not_invented(store: SQLiteEventStore, repos: dict[str, Path]) -> None:
    result = ask(store, repos["python"], "What does shop/missing.py contain?")
    assert "shop/missing.py could not be read" in (result.reply or "")
    assert "lines" not in (result.reply or "").split("could not be read")[0]


@pytest.mark.parametrize("question", ["hello?", "help", "?"])
def test_a_question_with_no_subject_is_put_back_to_the_user(
    store: SQLiteEventStore, repos: dict[str, Path], question: str
) -> None:
    from agentcore.models.offline import ASK_SUBJECT

    model = OfflineCodeModel()
    agent = Agent(model, model, code_tools(repos["go"]), store)
    waiting = agent.run_sync(question)
    assert (waiting.status, waiting.reason) == ("waiting_for_user", ASK_SUBJECT)
    assert not any(e.type == "tool_started" for e in store.read(waiting.run_id)), "nothing searched for a guess"
    path, line = GO_DEFINITIONS["ClientError"]
    result = agent.answer_sync(waiting.run_id, "Where is ClientError defined?")
    assert result.status == "succeeded"
    assert (LOCATION.search(result.reply or "") or [None])[0] == f"{path}:{line}"
    assert result.state.known_facts["user:answer"].source == "user"
