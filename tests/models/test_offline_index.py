"""The offline model on the symbol index: concept questions, typos, file questions, odd phrasing, cut lists.

Driven through the real runtime, real code tools (with their SQLite index in a temporary cache) and
a real SQLite event store.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentcore.core.events import ToolFinished
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import Agent, RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code.agent_tools import code_tools
from tests.tools.test_code_index import TREE, line_of, write_tree

LOCATION = re.compile(r"[\w./ü-]+\.\w+:\d+")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("repo"), TREE)
    many = "\n\n".join(f"def helper_{i}(x):\n    return shared_target(x)" for i in range(40))
    (root / "pkg" / "many.py").write_text("def shared_target(x):\n    return x\n\n\n" + many + "\n", encoding="utf-8")
    return root



def ask(store: SQLiteEventStore, root: Path, question: str) -> tuple[RunResult, list[str]]:
    model = OfflineCodeModel()
    result = Agent(model, model, code_tools(root), store).run_sync(question)
    assert result.status == "succeeded", result.reason
    assert result.reply
    assert "more chars not shown" not in result.reply
    tools = [e.name for e in store.read(result.run_id) if isinstance(e, ToolFinished)]
    return result, tools


@pytest.mark.parametrize(
    ("question", "name", "path"),
    [
        ("Where are retries with backoff handled?", "attempt_again", "pkg/retry.py"),
        ("Which code renders the progress bar?", "render", "pkg/progress.py"),
    ],
)
def test_concept_questions_get_cited_functions_with_their_docstring(
    store: SQLiteEventStore, repo: Path, question: str, name: str, path: str
) -> None:
    result, tools = ask(store, repo, question)
    assert tools == ["search_concepts"], "answered by a search, not a question back"
    reply = result.reply or ""
    first = LOCATION.search(reply)
    assert first and first.group(0).startswith(path + ":")
    assert name in reply.split(first.group(0))[0]
    doc_first_line = {"attempt_again": "Call fn again after a growing delay", "render": "Render the bar"}[name]
    assert doc_first_line in reply
    assert "not certain" in reply  # says plainly that it is a best guess


def test_a_typo_gets_the_closest_name_and_its_definition(store: SQLiteEventStore, repo: Path) -> None:
    result, tools = ask(store, repo, "Where is Confgi defined?")
    reply = result.reply or ""
    assert "no definition of 'Confgi' found" in reply and "did you mean Config" in reply
    assert f"pkg/config.py:{line_of(repo, 'pkg/config.py', 'class Config')}" in reply
    assert tools == ["find_definition", "find_definition"]


@pytest.mark.parametrize(
    "question",
    [
        "What is defined in config.py?",
        "what does `pkg/config.py` contain",
        "Was ist in pkg/config.py definiert?",
    ],
)
def test_file_questions_list_every_top_level_definition(store: SQLiteEventStore, repo: Path, question: str) -> None:
    result, tools = ask(store, repo, question)
    assert tools == ["outline"]
    reply = result.reply or ""
    for name, text in [("Config", "class Config"), ("load_config", "def load_config"), ("DEFAULT_PATH", "DEFAULT_PATH =")]:
        assert f"{name} (pkg/config.py:{line_of(repo, 'pkg/config.py', text)})" in reply


@pytest.mark.parametrize(
    ("question", "where"),
    [
        ("Wo ist die Klasse Äpfel definiert?", ("pkg/ünicode.py", "class Äpfel")),
        ("Où est définie la fonction Ωmega ?", ("pkg/ünicode.py", "def Ωmega")),
        ("where is 'formatPrice' defined", ("web/lib/format.js", "export const formatPrice")),
        ("Where is “Config.reload” defined?", ("pkg/config.py", "def reload")),
        ("¿Dónde está definida la función load_config?", ("pkg/config.py", "def load_config")),
        ("Config 在哪里定义?", ("pkg/config.py", "class Config")),  # a capitalised first word a verb frames
        ("Dove è definito il metodo reload?", ("pkg/config.py", "def reload")),
        (
            "I have been reading this repository for a while now and I keep getting lost, so could you please tell "
            "me, as precisely as you can and without guessing, where exactly the function `attempt_again` is "
            "defined, because I would like to change how long it waits between tries? " * 3,
            ("pkg/retry.py", "def attempt_again"),
        ),
    ],
)
def test_odd_phrasings(store: SQLiteEventStore, repo: Path, question: str, where: tuple[str, str]) -> None:
    result, _ = ask(store, repo, question)
    cited = LOCATION.search(result.reply or "")
    assert cited and cited.group(0) == f"{where[0]}:{line_of(repo, *where)}"


@pytest.mark.parametrize(
    ("question", "where"),
    [
        ("load_config", ("pkg/config.py", "def load_config")),  # one word, no verb
        ("config", ("pkg/config.py", "class Config")),  # a lower-case name: the same name in another case
        ("what does attempt_again do", ("pkg/retry.py", "def attempt_again")),
        ("tell me about config", ("pkg/config.py", "class Config")),
        ("Config?", ("pkg/config.py", "class Config")),  # a capitalised first (and only) word
        ("the load_config function", ("pkg/config.py", "def load_config")),
        ("where is config defined?", ("pkg/config.py", "class Config")),  # framed, in another case
        ("confg", ("pkg/config.py", "class Config")),  # a one-word typo no concept matches: the closest name
    ],
)
def test_one_word_and_lower_case_questions_are_looked_up_not_put_back(
    store: SQLiteEventStore, repo: Path, question: str, where: tuple[str, str]
) -> None:
    result, tools = ask(store, repo, question)
    cited = LOCATION.search(result.reply or "")
    assert cited and cited.group(0) == f"{where[0]}:{line_of(repo, *where)}", result.reply
    assert "find_definition" in tools


def test_uses_of_a_name_given_in_another_case(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "who calls config?")
    reply = result.reply or ""
    assert reply.startswith("(read as Config, the same name in another case) config is defined at pkg/config.py:")
    assert f"pkg/config.py:{line_of(repo, 'pkg/config.py', 'return Config()')}" in reply


@pytest.mark.parametrize(("question", "where"), [("backoff", ("pkg/retry.py", "def attempt_again")),
                                                 ("show me the terminal", ("pkg/progress.py", "class Bar"))])  # fmt: skip
def test_one_plain_word_with_no_such_name_gets_a_concept_search_said_to_be_a_guess(
    store: SQLiteEventStore, repo: Path, question: str, where: tuple[str, str]
) -> None:
    result, tools = ask(store, repo, question)
    assert f"{where[0]}:{line_of(repo, *where)}" in LOCATION.findall(result.reply or "")[:3], result.reply
    assert "not certain" in (result.reply or "")
    assert tools.count("search_concepts") == 1


def test_a_cut_list_says_how_many_more(store: SQLiteEventStore, repo: Path) -> None:
    result, tools = ask(store, repo, "Who calls shared_target?")
    reply = result.reply or ""
    assert "find_references" in tools
    assert "called 40 times at" in reply and "and 32 more" in reply
    assert len(set(LOCATION.findall(reply.partition("\n")[2]))) == 8


def test_a_definition_in_several_places_says_so(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "Where is Config defined?")
    reply = result.reply or ""
    assert reply.startswith(f"Config is defined at pkg/config.py:{line_of(repo, 'pkg/config.py', 'class Config')}")
    assert "Other definitions: tests/test_config.py:1 (class, test)" in reply


@pytest.mark.parametrize(
    ("question", "kind", "subject", "scope"),
    [
        ("What calls urlopen in this package?", "usage", "urlopen", None),
        ("Which classes inherit from BaseHandler?", "usage", "BaseHandler", None),
        ("Who uses the parse function in the urllib package?", "usage", "parse", "urllib"),
        ("Where is Request defined in the urllib package?", "definition", "Request", "urllib"),
        ("Where is Formatter defined in web/src/lib/format.ts?", "definition", "Formatter", "web/src/lib/format.ts"),
        ("In which file is ThreadPoolExecutor?", "definition", "ThreadPoolExecutor", None),
        ("Where is the command decorator defined?", "definition", "command", None),
        ("What is defined in message.py?", "file", "message.py", None),
        ("list the functions in json/encoder.py", "file", "json/encoder.py", None),
        ("Where is JSON decoding implemented?", "concept", "Where is JSON decoding implemented?", None),
        ("Where is quoted-printable encoding done?", "concept", "Where is quoted-printable encoding done?", None),
        ("¿Dónde está definida la función urlopen?", "definition", "urlopen", None),
        ("hello?", "unclear", "", None),
        ("how does it work?", "unclear", "", None),
        ("what is in the progress module", "file", "progress", None),
        ("What does the module config contain?", "file", "config", None),
        ("decoder", "lookup", "decoder", None),
        ("How are URLs split into components?", "concept", "How are URLs split into components?", None),
        ("option decorator", "lookup", "option decorator", None),
    ],
)
def test_reading_questions(question: str, kind: str, subject: str, scope: str | None) -> None:
    from agentcore.models.offline import Intent, classify

    got = classify(question)
    assert Intent(got.kind, got.subject, got.scope) == Intent(kind, subject, scope)


@pytest.mark.parametrize(
    ("question", "lead", "where"),
    [
        ("How does the Bar render the progress on the terminal?", "Related code.", ("pkg/progress.py", "def render")),
        ("How does the notes.txt loader retry with exponential backoff?", "Code matching the rest of the question instead.",
         ("pkg/retry.py", "def attempt_again")),
        ("Where does the Poller retry with exponential backoff?", "Code matching the rest of the question instead.",
         ("pkg/retry.py", "def attempt_again")),
    ],
)  # fmt: skip
def test_the_rest_of_the_question_gets_a_concept_search_too(
    store: SQLiteEventStore, repo: Path, question: str, lead: str, where: tuple[str, str]
) -> None:
    result, tools = ask(store, repo, question)
    assert "search_concepts" in tools
    reply = result.reply or ""
    rest = reply[reply.index(lead) :]
    assert f"{where[0]}:{line_of(repo, *where)}" in LOCATION.findall(rest)[:3], reply
    assert "not certain" in rest


def test_a_module_named_without_its_extension_is_outlined(store: SQLiteEventStore, repo: Path) -> None:
    result, tools = ask(store, repo, "what does the retry module contain?")
    assert tools == ["outline"]
    assert (result.reply or "").startswith("pkg/retry.py (the best match for retry) has")
    assert f"function attempt_again (pkg/retry.py:{line_of(repo, 'pkg/retry.py', 'def attempt_again')})" in (result.reply or "")
