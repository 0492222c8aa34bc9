"""The offline model on the question kinds of evals/held_out_s8b.json (session 8, second round).

Uses scoped to the module or file a question names, the members of a misspelt class, a name bound once per
platform module, a function with no docstring found through the line that registers it, what a function
returns or takes and what a class inherits from, environment variables, which tests cover a name, and a
module imported under a name a class also has in another case. Driven through the real runtime, real code
tools (SQLite index in a temporary cache) and a real SQLite event store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.models.offline import Intent, classify
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code import CodeTools
from tests.models.test_offline_index import LOCATION, ask
from tests.tools.test_code_index import line_of, write_tree

TREE = {
    "pkg/__init__.py": '"""A small HTTP package. Set APP_BASE_URL (or APPURL) to point it elsewhere."""\n',
    "pkg/client.py": '''
        def parse_headers(fp):
            """Read the header lines of a response."""
            return dict(line.split(":", 1) for line in fp)


        class Response:
            def begin(self, fp):
                self.headers = parse_headers(fp)
    ''',
    "pkg/server.py": '''
        from pkg import client


        class Handler:
            def read_request(self, fp):
                self.headers = client.parse_headers(fp)
    ''',
    "pkg/logs.py": '''
        class Filterer:
            pass


        class Logger(Filterer):
            """One logging channel."""

            def add_handler(self, handler):
                self.handlers.append(handler)

            def is_enabled_for(self, level):
                return level >= self.level
    ''',
    "pkg/unix_loop.py": "class _UnixSelectorLoop:\n    pass\n\n\nSelectorLoop = _UnixSelectorLoop\n",
    "pkg/windows_loop.py": "class _WindowsSelectorLoop:\n    pass\n\n\nSelectorLoop = _WindowsSelectorLoop\n",
    "pkg/pool.py": '''
        import atexit

        _shutdown = False


        def _python_exit():
            global _shutdown
            _shutdown = True


        # Called when the interpreter exits, before the worker threads are joined.
        atexit.register(_python_exit)


        def is_shutting_down(pool):
            # No more work once the interpreter is shutting down or the pool was shut down.
            return _shutdown or pool.shutdown_requested


        class Pool:
            """Runs work items on threads."""

            def submit(self, fn):
                return fn()
    ''',
    "pkg/settings.py": '''
        import os


        def configured_base_url():
            """The base URL of the API."""
            return os.environ.get("APP_BASE_URL") or os.environ.get("APPURL") or "http://localhost"
    ''',
    "pkg/model.py": 'class JsonPatch:\n    """A patch."""\n',
    "pkg/apply.py": "import jsonpatch\n\n\ndef apply(doc, ops):\n    return jsonpatch.apply_patch(doc, ops)\n",
    "tests/test_client.py": '''
        from pkg.client import parse_headers


        def test_one_header():
            assert parse_headers(["a: b"]) == {"a": " b"}


        def test_two_headers():
            assert len(parse_headers(["a: b", "c: d"])) == 2
    ''',
    "tests/test_server.py": "from pkg.server import Handler\n\n\ndef test_handler():\n    assert Handler\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("kinds"), TREE)



def at(repo: Path, rel: str, text: str) -> str:
    return f"{rel}:{line_of(repo, rel, text)}"


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("What does loads return?", Intent("definition", "loads")),
        ("What arguments does dumps take?", Intent("definition", "dumps")),
        ("what are the parameters of Client.__init__", Intent("definition", "Client.__init__")),
        ("Which class does StreamHandler inherit from?", Intent("definition", "StreamHandler")),
        ("what is the base class of ThreadingHTTPServer?", Intent("definition", "ThreadingHTTPServer")),
        ("What is the signature of urlopen?", Intent("definition", "urlopen")),
        ("Which tests cover assertWarns?", Intent("tests", "assertWarns")),
        ("where is parse_headers() tested?", Intent("tests", "parse_headers")),
        ("show me the tests for Logger", Intent("tests", "Logger")),
        ("Who calls parse_headers in the server module?", Intent("usage", "parse_headers", "server")),
        ("Where is the PAGER environment variable read?", Intent("definition", "PAGER")),
        ("which code reads the env var $HOME?", Intent("search", "HOME")),
    ],
)
def test_the_new_kinds_are_read(question: str, intent: Intent) -> None:
    assert classify(question) == intent


def test_what_does_it_do_stays_a_name_search() -> None:
    assert classify("what does as_completed do").kind == "search"
    assert classify("what does the Logger class define").kind == "members"


@pytest.mark.parametrize(
    ("question", "wanted", "unwanted"),
    [
        ("Who calls parse_headers in the server module?", ("pkg/server.py", "client.parse_headers(fp)"),
         ("pkg/client.py", "self.headers = parse_headers(fp)")),
        ("Who calls parse_headers in client.py?", ("pkg/client.py", "self.headers = parse_headers(fp)"),
         ("pkg/server.py", "client.parse_headers(fp)")),
        ("where is parse_headers used in pkg/server.py?", ("pkg/server.py", "client.parse_headers(fp)"),
         ("pkg/client.py", "self.headers = parse_headers(fp)")),
    ],
)  # fmt: skip
def test_uses_are_kept_to_the_place_the_question_names(
    store: SQLiteEventStore, repo: Path, question: str, wanted: tuple[str, str], unwanted: tuple[str, str]
) -> None:
    result, tools = ask(store, repo, question)
    cited = LOCATION.findall(result.reply or "")
    assert at(repo, *wanted) in cited, result.reply
    assert at(repo, *unwanted) not in cited, result.reply
    assert "left out" in (result.reply or "")  # the other uses are counted, not hidden
    assert "find_references" in tools


def test_a_scope_that_names_no_file_keeps_every_use(repo: Path, tmp_path: Path) -> None:
    ct = CodeTools(repo, cache_dir=tmp_path)
    every = ct.find_references("parse_headers", scope="Response")  # a class, not a place
    assert every.scope is None and every.out_of_scope == 0
    assert every.totals["calls"] == 4 and every.totals["imports"] == 1
    server = ct.find_references("parse_headers", scope="server")
    assert [(s.path, s.line) for s in server.calls] == [("pkg/server.py", 6)]
    assert server.out_of_scope == 4  # 3 calls and 1 import elsewhere
    assert "4 uses of that name outside server are left out." in server.summary()
    none = ct.find_references("configured_base_url", scope="tests")
    assert none.scope == "tests" and "were found in tests" in none.summary()


def test_the_members_of_a_misspelt_class_are_the_closest_class_s(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "what methods does Loger have")
    reply = result.reply or ""
    assert reply.startswith("No class is named 'Loger'; did you mean Logger?"), reply
    assert at(repo, "pkg/logs.py", "def add_handler") in LOCATION.findall(reply)
    assert "is_enabled_for" in reply


def test_a_name_bound_once_per_platform_cites_each_binding(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "Where is SelectorLoop defined?")
    cited = LOCATION.findall(result.reply or "")
    assert at(repo, "pkg/unix_loop.py", "SelectorLoop =") in cited, result.reply
    assert at(repo, "pkg/windows_loop.py", "SelectorLoop =") in cited, result.reply
    assert "the same way in 1 other place" in (result.reply or "")


def test_a_function_without_a_docstring_is_found_through_its_registration(
    store: SQLiteEventStore, repo: Path
) -> None:
    result, _ = ask(store, repo, "What is shut down when the interpreter exits?")
    assert LOCATION.findall(result.reply or "")[0] == at(repo, "pkg/pool.py", "def _python_exit"), result.reply


@pytest.mark.parametrize(
    ("question", "rel", "text"),
    [
        ("What does parse_headers return?", "pkg/client.py", "def parse_headers(fp):"),
        ("What arguments does Pool.submit take?", "pkg/pool.py", "def submit(self, fn):"),
        ("Which class does Logger inherit from?", "pkg/logs.py", "class Logger(Filterer):"),
    ],
)
def test_returns_arguments_and_bases_are_answered_by_the_definition(
    store: SQLiteEventStore, repo: Path, question: str, rel: str, text: str
) -> None:
    result, tools = ask(store, repo, question)
    assert tools[0] == "find_definition"
    assert LOCATION.findall(result.reply or "")[0] == at(repo, rel, text), result.reply


@pytest.mark.parametrize("question", ["Where is APP_BASE_URL read?", "Where is the APPURL environment variable read?"])
def test_an_environment_variable_is_found_where_it_is_read(store: SQLiteEventStore, repo: Path, question: str) -> None:
    result, tools = ask(store, repo, question)
    name = "APPURL" if "APPURL" in question else "APP_BASE_URL"
    assert "search_code" in tools
    # the quoted read comes first: not the docstring that mentions it, nor the close name configured_base_url
    assert LOCATION.findall(result.reply or "")[0] == at(repo, "pkg/settings.py", f'"{name}"'), result.reply


def test_which_tests_cover_a_name(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "Which tests cover parse_headers?")
    cited = LOCATION.findall(result.reply or "")
    assert cited[0].startswith("tests/test_client.py:"), result.reply  # the file that uses it most
    assert not any(c.startswith("pkg/") for c in cited), result.reply
    none, _ = ask(store, repo, "Which tests cover configured_base_url?")
    assert (none.reply or "").startswith("No test file uses 'configured_base_url'"), none.reply


def test_a_module_imported_under_a_class_s_name_in_another_case(store: SQLiteEventStore, repo: Path) -> None:
    result, _ = ask(store, repo, "where is jsonpatch imported?")
    assert at(repo, "pkg/apply.py", "import jsonpatch") in LOCATION.findall(result.reply or ""), result.reply
