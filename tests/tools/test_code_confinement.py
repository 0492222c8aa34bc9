"""Confinement of the code tools under hostile trees: races, a replaced root, links to outside ignore files,
patterns built to backtrack, names that are not UTF-8. Real files, real ``rg`` processes, real threads."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentcore.core.events import ToolCall
from agentcore.errors import ToolError, ToolTimeout
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code import CodeTools, find_rg
from agentcore.tools.code.agent_tools import code_tools
from agentcore.tools.runner import ToolRunner
from tests.support.bounded import bounded

ENGINES = ["ripgrep", "python"]
OUT = "OUTSIDE-CONTENT-7f3a"


def tools_for(root: Path, engine: str, **kwargs: object) -> CodeTools:
    return CodeTools(root, rg="rg" if engine == "ripgrep" else None, **kwargs)  # type: ignore[arg-type]


def dump(result: object) -> str:
    return json.dumps(result.model_dump(mode="json"))  # type: ignore[attr-defined]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("class Inside:\n    pass  # needle\n")
    (root / "sub" / "b.py").write_text("needle inside sub\n")
    outside.mkdir()
    for name in ("a.py", "secret_only_outside.py", "b.py"):
        (outside / name).write_text(f"class Inside:  # needle {OUT}\nneedle {OUT}\n")
    return root, outside


# -- a replaced root --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("how", ["link", "other-dir", "removed"])
def test_a_replaced_root_is_a_tool_error_on_every_tool(tree: tuple[Path, Path], engine: str, how: str) -> None:
    root, outside = tree
    tools = tools_for(root, engine)
    assert tools.search_code("needle").total == 2
    root.rename(root.with_name("repo.old"))
    if how == "link":
        root.symlink_to(outside, target_is_directory=True)
    elif how == "other-dir":
        root.mkdir()
        (root / "a.py").write_text(f"needle {OUT}\n")
    calls: list[Callable[[], object]] = [
        lambda: tools.search_code("needle"),
        lambda: tools.search_code("needle", regex=True),
        lambda: tools.list_files(),
        lambda: tools.find_definition("Inside"),
        lambda: tools.read_file("a.py"),
    ]
    for call in calls:
        with pytest.raises(ToolError, match="was replaced or removed") as err:
            call()
        assert OUT not in str(err.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_runner_stores_no_outside_content_from_a_replaced_root(tree: tuple[Path, Path], engine: str) -> None:
    root, outside = tree
    db = root.parent / "t.db"
    with SQLiteEventStore(db) as store:
        runner = ToolRunner(code_tools(root, rg="rg" if engine == "ripgrep" else None), store.artifacts)
        root.rename(root.with_name("repo.old"))
        root.symlink_to(outside, target_is_directory=True)
        for n, (name, args) in enumerate(
            [("search_code", {"query": "needle"}), ("list_files", {}), ("find_definition", {"symbol": "Inside"})]
        ):
            res = asyncio.run(runner.run(ToolCall(id=f"c{n}", name=name, arguments=args)))
            assert not res.ok and "replaced" in (res.error or "")
    assert OUT.encode() not in db.read_bytes()


# -- links that appear while the tools run ----------------------------------------------------------------

_RENAME_EXCHANGE = 2


def _exchange() -> Callable[[Path, Path], None]:
    """Atomic swap of two names with renameat2(RENAME_EXCHANGE); plain renames where it is missing."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn = getattr(libc, "renameat2", None)

    def swap(a: Path, b: Path) -> None:
        if fn is not None and fn(-100, bytes(a), -100, bytes(b), _RENAME_EXCHANGE) == 0:
            return
        tmp = a.with_name(a.name + ".swap")
        os.rename(a, tmp)
        os.rename(b, a)
        os.rename(tmp, b)

    return swap


@contextlib.contextmanager
def _flipping(pairs: list[tuple[Path, Path]]) -> Iterator[threading.Event]:
    stop = threading.Event()
    swap = _exchange()

    def run() -> None:
        while not stop.is_set():
            for a, b in pairs:
                swap(a, b)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.mark.parametrize("engine", ENGINES)
def test_links_swapped_in_during_searches_and_listings_never_leak(tree: tuple[Path, Path], engine: str) -> None:
    root, outside = tree
    (root / "sub_link").symlink_to(outside, target_is_directory=True)  # swapped with the real sub/
    (root / "a_link.py").symlink_to(outside / "a.py")  # swapped with the real a.py
    pairs = [(root / "sub", root / "sub_link"), (root / "a.py", root / "a_link.py")]
    tools = tools_for(root, engine, timeout=20)
    seen_inside = 0
    with _flipping(pairs):
        for _ in range(60):
            for call in (
                lambda: tools.search_code("needle"),
                lambda: tools.search_code("need.e", regex=True),
                lambda: tools.list_files(),
                lambda: tools.find_definition("Inside"),
            ):
                try:
                    text = dump(call())
                except ToolError:
                    continue
                assert OUT not in text and "secret_only_outside" not in text, text
                seen_inside += "needle" in text or "b.py" in text
    assert seen_inside > 0


# -- ignore files that are links to outside ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", [".gitignore", ".ignore", ".rgignore", "sub/.gitignore"])
def test_an_ignore_file_linking_outside_is_never_read(tree: tuple[Path, Path], engine: str, name: str) -> None:
    root, outside = tree
    secret = outside / "secrets.txt"
    secret.write_text(f"*.py\nAPI_KEY=[{OUT}\n{{{OUT}\n")  # ignores everything; bad globs make rg quote lines
    (root / name).symlink_to(secret)
    tools = tools_for(root, engine)
    result = tools.search_code("needle")
    listed = tools.list_files()
    assert {m.path for m in result.matches} == {"a.py", "sub/b.py"}  # the outside rules were not applied
    assert listed.files == ("a.py", "sub/b.py")
    for text in (dump(result), result.summary(), dump(listed), dump(tools.find_definition("Inside"))):
        assert OUT not in text and "API_KEY" not in text


# -- patterns built to backtrack -------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "glob", ["*a*a*a*a*a*a*a*a*b", "**/*a*a*a*a*a*a*a*a*a*a*c", "!*a*a*a*a*a*a*a*a*a*d", "*[ab]*[ab]*[ab]*[ab]*[ab]*x"]
)
def test_globs_built_to_backtrack_finish(tmp_path: Path, engine: str, glob: str) -> None:
    (tmp_path / ("a" * 200)).write_text("needle\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ("ba" * 100)).write_text("needle\n")
    tools = tools_for(tmp_path, engine, timeout=5)
    listed = bounded(lambda: tools.list_files(glob=glob))
    searched = bounded(lambda: tools.search_code("needle", glob=glob))
    negated = glob.startswith("!")
    assert not isinstance(listed, BaseException), listed
    assert not isinstance(searched, BaseException), searched
    assert len(listed.files) == (2 if negated else 0)  # type: ignore[attr-defined]
    assert searched.total == (2 if negated else 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("query", ["(a*)*b", "(a|aa)+$", "(x+x+)+y", "^(\\w+\\s?)*$"])
def test_regexes_built_to_backtrack_finish_on_the_python_engine(tmp_path: Path, query: str) -> None:
    (tmp_path / "f.txt").write_text("a" * 30_000 + "!\n" + "x" * 5000 + "\n" + "word " * 4000 + "!\n")
    tools = tools_for(tmp_path, "python", timeout=5)
    result = bounded(lambda: tools.search_code(query, regex=True))
    assert not isinstance(result, BaseException) or isinstance(result, ToolTimeout), result


# -- names that are not UTF-8 ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("raw", [b"caf\xe9.txt", b"bad\xff\xfename.py", b"dir\x80/inner.txt"])
def test_a_listed_name_that_is_not_utf8_can_be_read(tmp_path: Path, engine: str, raw: bytes) -> None:
    path = Path(os.fsdecode(bytes(tmp_path) + b"/" + raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("needle here\n")
    tools = tools_for(tmp_path, engine)
    (shown,) = tools.list_files().files
    assert "\ufffd" in shown
    assert [m.path for m in tools.search_code("needle").matches] == [shown]
    assert tools.read_file(shown).lines == ("needle here",)


def test_names_that_differ_only_in_bad_bytes_are_refused_not_confused(tmp_path: Path) -> None:
    for raw in (b"x\xe9.txt", b"x\xe8.txt"):
        Path(os.fsdecode(bytes(tmp_path) + b"/" + raw)).write_text(raw.decode("latin-1"))
    tools = tools_for(tmp_path, "python")
    assert tools.list_files().files == ("x\ufffd.txt", "x\ufffd.txt")
    with pytest.raises(ToolError, match="cannot be told apart"):
        tools.read_file("x\ufffd.txt")


# -- no rg outlives the command -------------------------------------------------------------------------


def test_rg_processes_are_killed_when_the_program_exits(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    fake = tmp_path / "bin" / "rg"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 300\n")
    fake.chmod(0o755)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.txt").write_text("x\n")
    script = (
        "import threading, time, os\n"
        "from agentcore.tools.code import CodeTools\n"
        f"t = CodeTools({str(tmp_path / 'repo')!r}, rg={str(fake)!r}, timeout=600)\n"
        "threading.Thread(target=lambda: t.search_code('x'), daemon=True).start()\n"
        f"while not os.path.exists({str(pids)!r}): time.sleep(0.05)\n"
        "raise KeyboardInterrupt\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert b"KeyboardInterrupt" in proc.stderr
    pid = int(pids.read_text().split()[0])
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break
        threading.Event().wait(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the rg process outlived the program that started it")


# -- ignore rules: pathspec gives what ripgrep's own walker gives ------------------------------------------


PARITY_TREES = [
    {
        ".gitignore": "*.log\n!keep.log\n/anchored.txt\ncache/\ndocs/**/draft.md\n\\#hash.txt\n*.tmp   \n[ab]x.txt\n",
        "sub/.gitignore": "local.txt\n!*.log\n",
        ".ignore": "from_dot_ignore.txt\n",
        ".rgignore": "!from_dot_ignore.txt\nrg_only.md\n",
        **dict.fromkeys(
            "a.log keep.log sub/b.log anchored.txt sub/anchored.txt cache/x.txt sub/cache/y.txt sub/x/cache "
            "docs/a/b/draft.md docs/draft.md docs/final.md sub/local.txt local.txt #hash.txt f.tmp ax.txt "
            "cx.txt from_dot_ignore.txt rg_only.md sub/rg_only.md".split(),
            "",
        ),
    },
    {
        ".gitignore": "build/\n*.o\n!important.o\n/top_only\n**/gen/**\n",
        "src/.gitignore": "*.tmp\n!keep.tmp\n",
        "src/deep/.ignore": "secret*\n",
        **dict.fromkeys(
            "build/a.c src/build/b.c x.o important.o src/y.o top_only src/top_only gen/g.c src/gen/h.c "
            "src/a.tmp src/keep.tmp src/deep/secret.txt src/deep/public.txt src/deep/x.tmp README".split(),
            "",
        ),
    },
]


@pytest.mark.parametrize("tree", PARITY_TREES, ids=["gitignore-features", "nested-and-dirs"])
@pytest.mark.parametrize("engine", ENGINES)
def test_ignore_rules_match_ripgreps_own_walker(tmp_path: Path, tree: dict[str, str], engine: str) -> None:
    for rel, text in tree.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    rg = subprocess.run(
        [str(find_rg()), "--no-config", "--no-require-git", "--no-ignore-parent", "--no-ignore-global", "--files"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert tools_for(tmp_path, engine).list_files().files == tuple(sorted(rg.stdout.split()))

