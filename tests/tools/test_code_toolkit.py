"""The code tools on real trees: confinement traps, both search engines, paging, listing, definitions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from agentcore.errors import ConfigError, ToolError, ToolTimeout
from agentcore.tools.code import CodeRoot, CodeTools, FileList, SearchResult, find_rg
from agentcore.tools.code.ignore import GlobFilter
from tests.support.code_fixtures import (
    BIG_FILE_MARKER,
    GO_DEFINITIONS,
    PYTHON_DEFINITIONS,
    TRAP_MARKER,
    TRAP_MARKER_VISIBLE,
    TrapTree,
    make_go_repo,
    make_python_repo,
    make_trap_tree,
)

ENGINES = ["ripgrep", "python"]


def tools_for(root: Path, engine: str, **kwargs: object) -> CodeTools:
    tools = CodeTools(root, rg="rg" if engine == "ripgrep" else None, **kwargs)  # type: ignore[arg-type]
    assert repr(tools).endswith(f"engine={engine!r})")
    return tools


@pytest.fixture(scope="module")
def trap(tmp_path_factory: pytest.TempPathFactory) -> TrapTree:
    return make_trap_tree(tmp_path_factory.mktemp("trap"))


@pytest.fixture(scope="module")
def py_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_python_repo(tmp_path_factory.mktemp("py"))


@pytest.fixture(scope="module")
def go_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_go_repo(tmp_path_factory.mktemp("go"))


@pytest.fixture(params=ENGINES)
def tools(request: pytest.FixtureRequest, trap: TrapTree) -> CodeTools:
    return tools_for(trap.root, request.param)


def locations(result: SearchResult) -> set[tuple[str, int]]:
    return {(m.path, m.line) for m in result.matches}


# --- confinement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../outside/secret.txt", "contains '..'"),
        ("src/../../outside/secret.txt", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("link_etc/passwd", "outside the code root"),
        ("link_etc/hostname", "outside the code root"),
        ("link_secret.txt", "outside the code root"),
        ("hard_secret.txt", "hard link"),
        ("no/such/file.py", "does not exist"),
        ("src", "is a directory"),
        ("image.bin", "binary file"),
    ],
)
def test_read_file_refuses_traps(trap: TrapTree, path: str, says: str) -> None:
    tools = CodeTools(trap.root)
    with pytest.raises(ToolError, match=says) as err:
        tools.read_file(path)
    assert "OUTSIDE" not in str(err.value)


def test_resolve_keeps_inside_links_and_refuses_outside_ones(trap: TrapTree) -> None:
    root = CodeRoot(trap.root)
    assert root.resolve("link_ok.py") == trap.root.resolve() / "src" / "app.py"
    assert root.resolve(".") == trap.root.resolve()
    for bad in ("link_etc", "link_secret.txt", "../root/notes.txt", str(trap.outside)):
        with pytest.raises(ToolError):
            root.resolve(bad)


def test_a_symlink_inside_the_root_can_be_read(trap: TrapTree) -> None:
    page = CodeTools(trap.root).read_file("link_ok.py")
    assert page.lines == ("def main():", f"    print('{TRAP_MARKER} app')")


def test_hard_links_are_read_only_when_every_link_is_inside(trap: TrapTree) -> None:
    tools = CodeTools(trap.root)
    assert tools.read_file("pair_b.txt").lines == (f"{TRAP_MARKER} hard-linked inside the root",)
    with pytest.raises(ToolError, match="not all of its links are inside"):
        tools.read_file("hard_secret.txt")


def _swap_tree(tmp_path: Path) -> tuple[CodeRoot, Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.txt").write_text("inside\n")
    (root / "sub" / "b.txt").write_text("inside too\n")
    (outside / "a.txt").write_text("OUTSIDE\n")
    (outside / "b.txt").write_text("OUTSIDE\n")
    return CodeRoot(root), root, outside


def test_a_file_swapped_for_a_symlink_after_the_check_is_refused(tmp_path: Path) -> None:
    root, tree, outside = _swap_tree(tmp_path)
    checked = root.check_file("a.txt")
    os.symlink(outside / "a.txt", tree / "swap")
    os.replace(tree / "swap", tree / "a.txt")
    with pytest.raises(ToolError, match="changed while it was being opened"):
        root.open(checked)


def test_a_file_replaced_by_another_after_the_check_is_refused(tmp_path: Path) -> None:
    root, tree, _ = _swap_tree(tmp_path)
    checked = root.check_file("a.txt")
    (tree / "other").write_text("another file\n")
    os.replace(tree / "other", tree / "a.txt")
    with pytest.raises(ToolError, match="changed while"):
        root.open(checked)


def test_a_directory_swapped_for_a_symlink_after_the_check_is_refused(tmp_path: Path) -> None:
    root, tree, outside = _swap_tree(tmp_path)
    checked = root.check_file("sub/b.txt")
    os.rename(tree / "sub", tree / "sub_old")
    os.symlink(outside, tree / "sub")
    with pytest.raises(ToolError, match="changed while"):
        root.open(checked)


def test_an_unchanged_checked_file_opens(tmp_path: Path) -> None:
    root, _, _ = _swap_tree(tmp_path)
    with root.open(root.check_file("sub/b.txt")) as f:
        assert f.read() == b"inside too\n"


def test_bad_configuration_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an existing directory"):
        CodeTools(tmp_path / "missing")
    with pytest.raises(ConfigError, match="was not found"):
        CodeTools(tmp_path, rg=str(tmp_path / "no-rg"))
    with pytest.raises(ConfigError, match="timeout must be positive"):
        CodeTools(tmp_path, timeout=0)



def test_rg_beside_the_interpreter_is_found_without_path(tmp_path: Path) -> None:
    """A virtual environment that is not activated: ``rg`` (from the ``ripgrep`` wheel) sits in the
    interpreter's scripts directory but not on ``PATH``; both ``AUTO`` and ``rg="rg"`` still find it."""
    (tmp_path / "a.py").write_text("needle = 1\n")
    code = (
        "import sys; from agentcore.tools.code import CodeTools; "
        "t = CodeTools(sys.argv[1]); e = CodeTools(sys.argv[1], rg='rg'); "
        "print(t.settings.rg); print(e.settings.rg); print(t.search_code('needle').matches[0].path)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    auto, named, path = done.stdout.splitlines()
    assert shutil.which("rg", path="/usr/bin:/bin") is None, "this test needs rg to be absent from /usr/bin:/bin"
    assert Path(auto).parent == Path(sys.executable).parent and Path(auto).name == "rg"
    assert named == auto
    assert path == "a.py"

# --- search_code ---------------------------------------------------------------------------------------


def test_search_finds_only_what_is_visible_inside_the_root(tools: CodeTools) -> None:
    result = tools.search_code(TRAP_MARKER)
    assert locations(result) == TRAP_MARKER_VISIBLE
    assert result.total == len(TRAP_MARKER_VISIBLE)
    # the Python engine skips image.bin (binary) and hard_secret.txt (a hard link to a file outside)
    assert result.files_searched == (7 if result.engine == "python" else None)
    assert [m.path for m in result.matches] == sorted(m.path for m in result.matches)
    latin = next(m for m in result.matches if m.path == "latin1.txt")
    assert latin.text == f"caf\ufffd {TRAP_MARKER} latin-1"
    assert tools.search_code("OUTSIDE").total == 0
    assert tools.search_code("root:x:0:0").total == 0


def test_a_query_starting_with_a_dash_is_text(tools: CodeTools) -> None:
    assert locations(tools.search_code("-v is")) == {("notes.txt", 2)}
    assert locations(tools.search_code("-v", regex=True)) == {("notes.txt", 2)}


def test_an_invalid_regex_is_a_tool_error_quoting_the_engine(tools: CodeTools) -> None:
    with pytest.raises(ToolError, match=r"invalid regex 'foo\(': .*(unclosed group|missing \))") as err:
        tools.search_code("foo(", regex=True)
    assert "regex=False" in str(err.value)
    assert tools.search_code("foo(").total == 0


def test_search_finds_a_match_at_the_end_of_a_20_mb_file(tools: CodeTools, trap: TrapTree) -> None:
    assert (trap.root / "big.txt").stat().st_size >= 20 * 1024 * 1024
    result = tools.search_code(BIG_FILE_MARKER)
    assert locations(result) == {("big.txt", trap.big_lines)}


def test_glob_narrows_the_search_but_never_brings_back_ignored_files(tools: CodeTools) -> None:
    assert locations(tools.search_code(TRAP_MARKER, glob="*.py")) == {("src/app.py", 2)}
    in_txt = locations(tools.search_code(TRAP_MARKER, glob="*.txt"))
    assert in_txt == {loc for loc in TRAP_MARKER_VISIBLE if loc[0].endswith(".txt")}
    assert locations(tools.search_code(TRAP_MARKER, glob="dir with space/")) == {("dir with space/naïve ü file.txt", 1)}
    assert locations(tools.search_code(TRAP_MARKER, glob="!*.txt")) == {("src/app.py", 2)}


@pytest.mark.parametrize(
    ("query", "regex", "glob"),
    [
        (TRAP_MARKER, False, None),
        (r"TRAP_\w+ (plain|app|unicode)", True, None),
        (r"^def \w+\(\)", True, "src/**/*.py"),
        ("é", False, None),
        ("-v", False, "*.txt"),
        (BIG_FILE_MARKER, False, "big.*"),
    ],
)
def test_both_engines_agree(trap: TrapTree, query: str, regex: bool, glob: str | None) -> None:
    fast, slow = (tools_for(trap.root, e).search_code(query, regex=regex, glob=glob) for e in ENGINES)
    assert (fast.engine, slow.engine) == ("ripgrep", "python")
    same = {"mode", "query", "glob", "matches", "total"}
    assert fast.model_dump(include=same) == slow.model_dump(include=same)


def test_bad_queries_are_tool_errors(tools: CodeTools) -> None:
    for query, says in (("", "query is empty"), ("a\nb", "several lines")):
        with pytest.raises(ToolError, match=says):
            tools.search_code(query)
    with pytest.raises(ToolError, match="max_results must be between 1 and 200"):
        tools.search_code("x", max_results=0)
    with pytest.raises(ToolError, match="not a valid pattern"):
        tools.search_code("x", glob="[abc")


@pytest.fixture(scope="module")
def many_hits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hits")
    (root / "hits.txt").write_text("".join(f"hit number {i} " + "x" * 400 + "\n" for i in range(1, 501)))
    return root


@pytest.mark.parametrize("engine", ENGINES)
def test_summary_is_short_and_says_what_was_left_out(many_hits: Path, engine: str) -> None:
    result = tools_for(many_hits, engine).search_code("hit number", max_results=5)
    assert result.total == len(result.matches) == 500
    assert all(len(m.text) <= 301 for m in result.matches)
    lines = result.summary().splitlines()
    assert lines[0] == f"500 matches for 'hit number' in 1 file ({engine}):"
    assert lines[1].startswith("hits.txt:1: hit number 1 xxx") and lines[1].endswith("…")
    assert lines[6] == "[495 more matches not shown; narrow the query or pass a glob]"
    assert len(lines) == 7
    assert len(result.summary(top_k=10_000).splitlines()) == 1 + 200 + 1
    raw = json.loads(json.dumps(result.model_dump(mode="json")))
    assert SearchResult.model_validate(raw) == result


@pytest.mark.parametrize("engine", ENGINES)
def test_match_limit_keeps_the_count(many_hits: Path, engine: str) -> None:
    result = tools_for(many_hits, engine, match_limit=10).search_code("hit number")
    assert (len(result.matches), result.total) == (10, 500)
    assert "only the first 10 of 500" in result.summary()


def test_no_match_summary_gives_a_next_step(tools: CodeTools) -> None:
    summary = tools.search_code("nothing like this anywhere").summary()
    assert summary.startswith("No matches for 'nothing like this anywhere'") and "shorter query" in summary


def test_python_engine_times_out(trap: TrapTree) -> None:
    with pytest.raises(ToolTimeout, match="took longer than"):
        tools_for(trap.root, "python", timeout=1e-9).search_code(TRAP_MARKER)


def _fake_rg(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-rg"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_ripgrep_that_runs_too_long_is_killed(tmp_path: Path) -> None:
    tools = CodeTools(tmp_path, rg=_fake_rg(tmp_path, "exec sleep 30"), timeout=0.2)
    with pytest.raises(ToolTimeout, match=r"took longer than 0\.2 s"):
        tools.search_code("x")


def test_ripgrep_that_fails_is_a_tool_error(tmp_path: Path) -> None:
    tools = CodeTools(tmp_path, rg=_fake_rg(tmp_path, "echo 'rg: disk on fire' >&2; exit 2"))
    with pytest.raises(ToolError, match="search with ripgrep failed: rg: disk on fire"):
        tools.search_code("x")


@pytest.mark.parametrize("engine", ENGINES)
def test_non_utf8_file_names_are_searched_and_listed(tmp_path: Path, engine: str) -> None:
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("needle\n")
    tools = tools_for(tmp_path, engine)
    assert locations(tools.search_code("needle")) == {("caf\ufffd.txt", 1)}
    assert tools.list_files().files == ("caf\ufffd.txt",)


# --- read_file -----------------------------------------------------------------------------------------


def test_read_file_pages_a_20_mb_file_without_loading_it(trap: TrapTree) -> None:
    tools = CodeTools(trap.root)
    tracemalloc.start()
    try:
        page = tools.read_file("big.txt", max_lines=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert (page.start_line, page.end_line, page.total_lines) == (1, 3, trap.big_lines)
    assert page.summary().splitlines() == [
        f"big.txt: lines 1-3 of {trap.big_lines}",
        "    1| filler line of text for the big file",
        "    2| filler line of text for the big file",
        "    3| filler line of text for the big file",
        f"[{trap.big_lines - 3} more lines: call read_file(path='big.txt', start_line=4) for the next page]",
    ]
    last = tools.read_file("big.txt", start_line=trap.big_lines)
    assert last.lines == (f"the end: {BIG_FILE_MARKER}",) and last.next_start_line is None


def test_read_file_pages_follow_on(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("".join(f"line {i}\n" for i in range(1, 11)) + "no newline at the end")
    tools = CodeTools(tmp_path)
    first = tools.read_file("f.py", max_lines=4)
    assert first.lines == ("line 1", "line 2", "line 3", "line 4") and first.total_lines == 11
    second = tools.read_file("f.py", start_line=first.next_start_line or 0, end_line=6)
    assert (second.start_line, second.end_line, second.lines) == (5, 6, ("line 5", "line 6"))
    tail = tools.read_file("./f.py", start_line=10)
    assert tail.lines == ("line 10", "no newline at the end") and tail.path == "f.py"
    assert tail.summary().splitlines()[-1] == "   11| no newline at the end"
    with pytest.raises(ToolError, match="has 11 lines; start_line=12 is past the end"):
        tools.read_file("f.py", start_line=12)
    for kwargs, says in (
        ({"start_line": 0}, "start_line must be 1 or more"),
        ({"start_line": 5, "end_line": 4}, "is before start_line"),
        ({"max_lines": 501}, "max_lines must be between 1 and 500"),
    ):
        with pytest.raises(ToolError, match=says):
            tools.read_file("f.py", **kwargs)  # type: ignore[arg-type]


def test_read_file_odd_contents(tmp_path: Path, trap: TrapTree) -> None:
    latin = CodeTools(trap.root).read_file("latin1.txt")
    assert latin.replaced_invalid_utf8 and latin.lines == (f"caf\ufffd {TRAP_MARKER} latin-1",)
    assert "not valid UTF-8" in latin.summary()
    unicode = CodeTools(trap.root).read_file("dir with space/naïve ü file.txt")
    assert unicode.lines == (f"{TRAP_MARKER} unicode ✓",) and not unicode.replaced_invalid_utf8
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "wide.js").write_text("é" * 5000 + "\nshort\r\n")
    tools = CodeTools(tmp_path)
    assert tools.read_file("empty.txt").summary() == "empty.txt: empty file (0 lines)."
    wide = tools.read_file("wide.js")
    assert wide.cut_lines == 1 and wide.total_lines == 2 and not wide.replaced_invalid_utf8
    assert wide.lines[0] == "é" * 1000 + " …[8000 more bytes not shown]" and wide.lines[1] == "short"
    (tmp_path / "split.txt").write_bytes(b"a" + "é".encode() * 1500 + b"\n")  # byte 2,000 is half an é
    split = tools.read_file("split.txt")
    assert split.lines[0] == "a" + "é" * 999 + " …[1002 more bytes not shown]" and not split.replaced_invalid_utf8


# --- list_files ----------------------------------------------------------------------------------------


def test_list_files_shows_the_visible_files_only(tools: CodeTools) -> None:
    listed = tools.list_files()
    assert listed.files == (
        "big.txt",
        "dir with space/naïve ü file.txt",
        "hard_secret.txt",
        "image.bin",
        "latin1.txt",
        "notes.txt",
        "pair_a.txt",
        "pair_b.txt",
        "src/app.py",
    )
    assert (listed.total, listed.truncated) == (9, False)
    short = tools.list_files(glob="*.txt", max_results=2)
    assert short.files == ("big.txt", "dir with space/naïve ü file.txt") and short.total == 7 and short.truncated
    assert short.summary().splitlines()[-1] == "[5 more files not shown; narrow the glob]"
    assert FileList.model_validate(json.loads(short.model_dump_json())) == short
    assert tools.list_files(glob="src/*.py").files == ("src/app.py",)
    assert tools.list_files(glob="*.rs").summary().startswith("No files match '*.rs'")


IGNORE_TREE = {
    ".gitignore": "*.log\n!keep.log\n/anchored.txt\ncache/\ndocs/**/draft.md\n\\#hash.txt\n*.tmp   \n[ab]x.txt\n",
    "sub/.gitignore": "local.txt\n!*.log\n",
    ".ignore": "from_dot_ignore.txt\n",
    ".git/info/exclude": "excluded.txt\n",
    **dict.fromkeys(
        "a.log keep.log sub/b.log anchored.txt sub/anchored.txt cache/x.txt sub/cache/y.txt sub/x/cache "
        "docs/a/b/draft.md docs/draft.md docs/final.md sub/local.txt local.txt #hash.txt f.tmp ax.txt "
        "cx.txt from_dot_ignore.txt excluded.txt".split(),
        "",
    ),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_ignore_rules(tmp_path: Path, engine: str) -> None:
    for rel, text in IGNORE_TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert tools_for(tmp_path, engine).list_files().files == (
        "cx.txt",
        "docs/final.md",
        "keep.log",
        "local.txt",
        "sub/anchored.txt",
        "sub/b.log",
        "sub/x/cache",
    )


def test_glob_filter_semantics() -> None:
    assert GlobFilter("*.py")("a/b/c.py") and not GlobFilter("*.py")("a/b/c.pyc")
    assert GlobFilter("src/*.py")("src/a.py") and not GlobFilter("src/*.py")("src/x/a.py")
    assert GlobFilter("src/**/*.py")("src/x/y/a.py") and GlobFilter("src/**/*.py")("src/a.py")
    assert GlobFilter("tests")("pkg/tests/test_a.py") and not GlobFilter("/tests")("pkg/tests/test_a.py")
    assert GlobFilter("**/*")("anything/at/all") and not GlobFilter("!*.md")("README.md")
    with pytest.raises(ToolError, match="glob is empty"):
        GlobFilter(" ")


# --- find_definition (the symbol index; more in test_code_index.py) --------------------------------------


def test_find_definition_in_go(go_repo: Path, tmp_path: Path) -> None:
    tools = CodeTools(go_repo, cache_dir=tmp_path)
    result = tools.find_definition("ClientError")
    assert [(d.path, d.line, d.kind, d.signature) for d in result.definitions] == [
        ("client/errors.go", 7, "class", "type ClientError struct {")
    ]
    assert result.summary().splitlines()[:2] == [
        "1 definition of 'ClientError', best first:",
        "1. class ClientError at client/errors.go:7 [source]: type ClientError struct {",
    ]
    for symbol, where in GO_DEFINITIONS.items():
        best = tools.find_definition(symbol).definitions[0]
        assert (best.path, best.line) == where, symbol


def test_find_definition_in_python(py_repo: Path, tmp_path: Path) -> None:
    tools = CodeTools(py_repo, cache_dir=tmp_path)
    for symbol, where in PYTHON_DEFINITIONS.items():
        assert [(d.path, d.line) for d in tools.find_definition(symbol).definitions][:1] == [where], symbol
    cart = tools.find_definition("Cart")
    # the class first; then the imports, the package's re-export before the test's; never the comment in the test
    assert [(d.path, d.line, d.kind) for d in cart.definitions] == [
        ("shop/cart.py", 9, "class"), ("shop/__init__.py", 2, "import"), ("tests/test_cart.py", 1, "import")
    ]
    assert [(d.path, d.line) for d in tools.find_definition("TAX_RATE").definitions] == [("shop/cart.py", 5)]
    assert [(d.path, d.line) for d in tools.find_definition("Cart.add_item").definitions][:1] == [("shop/cart.py", 14)]
    assert tools.find_definition("not_defined_anywhere").summary().startswith("No definition of")


def test_rg_is_found_for_the_default_engine(trap: TrapTree) -> None:
    assert find_rg() is not None
    assert CodeTools(trap.root).search_code(TRAP_MARKER).engine == "ripgrep"
