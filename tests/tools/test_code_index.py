"""The symbol index on small real trees in Python, JavaScript, TypeScript and Go: ranking, references,
outlines, concept search, invalidation, confinement, and the cache living outside the root."""

from __future__ import annotations

import os
import sqlite3
import textwrap
from pathlib import Path

import pytest

from agentcore.errors import ToolError
from agentcore.tools.code import CodeTools
from agentcore.tools.code.index import SymbolIndex
from agentcore.tools.code.paths import CodeRoot

TREE = {
    ".gitignore": "build/\n",
    "pkg/__init__.py": "from pkg.config import Config\n",
    "pkg/config.py": '''
        """Configuration loading."""

        DEFAULT_PATH = "app.toml"


        class Config:
            """Settings read from a TOML file."""

            def reload(self):
                def parse_line(line):
                    return line.strip()

                return [parse_line(x) for x in open(DEFAULT_PATH)]


        def load_config(path=DEFAULT_PATH):
            """Read the configuration file at path."""
            return Config()
    ''',
    "pkg/_vendor/config.py": "class Config:\n    pass\n",
    "pkg/config.pyi": "class Config:\n    def reload(self) -> list[str]: ...\n",
    "tests/test_config.py": "class Config:\n    pass\n\n\ndef test_load():\n    load_config()\n",
    "docs/example.py": "class Config:\n    pass\n",
    "pkg/strings.py": 'TEMPLATE = "class Config:\\n    pass"\n# def load_config(): not a definition\n',
    "pkg/ünicode.py": "class Äpfel:\n    pass\n\n\ndef Ωmega():\n    return Äpfel()\n",
    "pkg/retry.py": '''
        import time


        def attempt_again(fn, tries=5):
            """Call fn again after a growing delay (exponential backoff) when it fails."""
            # retry until the tries run out
            for n in range(tries):
                try:
                    return fn()
                except OSError:
                    time.sleep(2**n)
    ''',
    "pkg/progress.py": '''
        class Bar:
            """Draws a progress bar on the terminal."""

            def render(self, done, total):
                """Render the bar for done out of total steps."""
                return "#" * done + "." * (total - done)
    ''',
    "app/main.py": '''
        import pkg.config
        from pkg.config import load_config

        cfg = load_config()
        cfg.reload()
        handler = load_config
    ''',
    "build/config.py": "class Config:  # ignored build output\n    pass\n",
    "web/lib/format.js": '''
        const Widget = require("./widget");
        const SAMPLE = "function formatPrice() {}";

        /** Formats a price in euros. */
        export const formatPrice = (value) => `${value.toFixed(2)} EUR`;

        module.exports.legacyFormat = function (value) {
          return formatPrice(value);
        };
    ''',
    "web/lib/widget.js": "class Widget {\n  draw() {}\n}\nmodule.exports = Widget;\n",
    "web/node_modules/left/index.js": "export function formatPrice(v) { return v; }\n",
    "web/test/format.test.js": "const formatPrice = (v) => v;\nformatPrice(1);\n",
    "ts/shapes.ts": '''
        export interface Shape {
          area(): number;
        }

        export type Id = string;

        export enum Color { Red, Green }

        export class Circle implements Shape {
          constructor(private r: number) {}
          area(): number {
            return Math.PI * this.r * this.r;
          }
        }

        export const makeCircle = (r: number): Circle => new Circle(r);
    ''',
    "ts/shapes.d.ts": "export declare class Circle {\n  area(): number;\n}\n",
    "ts/main.ts": 'import { makeCircle } from "./shapes";\n\nconsole.log(makeCircle(2).area());\n',
    "go/client/client.go": '''
        package client

        // Client fetches documents.
        type Client struct {
            base string
        }

        // NewClient returns a Client for base.
        func NewClient(base string) *Client {
            return &Client{base: base}
        }

        // Get fetches path.
        func (c *Client) Get(path string) string {
            return c.base + path
        }
    ''',
    "go/vendor/example.com/client/client.go": "package client\n\nfunc NewClient() {}\n",
    "go/main.go": 'package main\n\nimport "example.com/client"\n\nfunc main() {\n\tc := client.NewClient("x")\n\tc.Get("/")\n}\n',
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("repo"), TREE)


@pytest.fixture(scope="module")
def tools(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> CodeTools:
    return CodeTools(repo, cache_dir=tmp_path_factory.mktemp("cache"))


def places(result) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    return [(d.path, d.line, d.kind) for d in result.definitions]


def line_of(repo: Path, rel: str, text: str) -> int:
    return next(n for n, t in enumerate((repo / rel).read_text(encoding="utf-8").splitlines(), 1) if text in t)


# --- ranking ----------------------------------------------------------------------------------------


def test_source_before_tests_docs_vendored_and_stubs_and_imports_last(tools: CodeTools, repo: Path) -> None:
    got = places(tools.find_definition("Config"))
    assert got[0] == ("pkg/config.py", line_of(repo, "pkg/config.py", "class Config"), "class")
    assert [p for p, _, _ in got[1:5]] == ["tests/test_config.py", "docs/example.py", "pkg/_vendor/config.py", "pkg/config.pyi"]
    assert got[-1] == ("pkg/__init__.py", 1, "import")
    paths = [p for p, _, _ in got]
    assert "pkg/strings.py" not in paths, "text inside a string is not a definition"
    assert "build/config.py" not in paths, ".gitignore'd files are not indexed"


def test_the_named_place_comes_first(tools: CodeTools) -> None:
    assert places(tools.find_definition("Config", scope="_vendor"))[0][0] == "pkg/_vendor/config.py"
    assert places(tools.find_definition("Config", scope="docs"))[0][0] == "docs/example.py"
    assert places(tools.find_definition("client.NewClient"))[0][0] == "go/client/client.go"


def test_js_definitions_beat_require_lines_and_node_modules(tools: CodeTools, repo: Path) -> None:
    fmt = places(tools.find_definition("formatPrice"))
    assert fmt[0] == ("web/lib/format.js", line_of(repo, "web/lib/format.js", "export const formatPrice"), "function")
    assert [p for p, _, _ in fmt[1:]] == ["web/test/format.test.js", "web/node_modules/left/index.js"]
    assert places(tools.find_definition("Widget")) == [("web/lib/widget.js", 1, "class"), ("web/lib/format.js", 1, "require")]
    assert places(tools.find_definition("legacyFormat"))[0][2] == "function"  # module.exports.name = function


def test_typescript_and_go_kinds(tools: CodeTools, repo: Path) -> None:
    assert places(tools.find_definition("Shape")) == [("ts/shapes.ts", 1, "interface")]
    shape = [(e.name, e.kind, e.container) for e in tools.outline("ts/shapes.ts").entries if e.depth]
    assert ("area", "method", "Shape") in shape and ("area", "method", "Circle") in shape
    assert places(tools.find_definition("Id"))[0][2] == "type"
    assert places(tools.find_definition("Color"))[0][2] == "enum"
    assert places(tools.find_definition("makeCircle"))[0] == ("ts/shapes.ts", line_of(repo, "ts/shapes.ts", "makeCircle ="), "function")
    assert [p for p, _, _ in places(tools.find_definition("Circle"))] == ["ts/shapes.ts", "ts/shapes.d.ts"]
    get = tools.find_definition("Client.Get").definitions[0]
    assert (get.path, get.kind, get.container) == ("go/client/client.go", "method", "Client")
    assert places(tools.find_definition("NewClient"))[-1][0] == "go/vendor/example.com/client/client.go"


def test_unicode_names_and_typos(tools: CodeTools) -> None:
    assert places(tools.find_definition("Äpfel")) == [("pkg/ünicode.py", 1, "class")]
    assert places(tools.find_definition("Ωmega")) == [("pkg/ünicode.py", 5, "function")]
    missing = tools.find_definition("Confgi")
    assert missing.definitions == () and missing.suggestions[0] == "Config"
    assert "Did you mean: Config" in missing.summary()


# --- references and outlines -----------------------------------------------------------------------


def test_references_are_told_apart_and_exclude_the_definition(tools: CodeTools, repo: Path) -> None:
    refs = tools.find_references("load_config")
    calls = {(s.path, s.line) for s in refs.calls}
    assert ("app/main.py", line_of(repo, "app/main.py", "cfg = load_config()")) in calls
    assert ("tests/test_config.py", 6) in calls
    assert [(s.path, s.line) for s in refs.imports] == [("app/main.py", 2)]
    assert [(s.path, s.line) for s in refs.mentions] == [("app/main.py", line_of(repo, "app/main.py", "handler ="))]
    assert ("pkg/config.py", line_of(repo, "pkg/config.py", "def load_config")) not in calls | {(s.path, s.line) for s in refs.mentions}
    assert refs.calls[0].path == "app/main.py", "source before tests"
    assert refs.calls[0].text == "cfg = load_config()"
    assert "pkg/strings.py" not in {s.path for s in refs.calls + refs.mentions}, "a comment is not a use"
    assert [(s.path, s.line) for s in tools.find_references("reload").attributes] == []
    assert ("app/main.py", 5) in {(s.path, s.line) for s in tools.find_references("reload").calls}
    ts = tools.find_references("makeCircle")
    assert [(s.path, s.line) for s in ts.imports] == [("ts/main.ts", 1)] and ("ts/main.ts", 3) in {(s.path, s.line) for s in ts.calls}
    go = tools.find_references("NewClient")
    assert ("go/main.go", 6) in {(s.path, s.line) for s in go.calls}


def test_outline_lists_top_level_and_marks_nested(tools: CodeTools, repo: Path) -> None:
    out = tools.outline("pkg/config.py")
    assert [(e.name, e.kind, e.depth, e.container) for e in out.entries] == [
        ("DEFAULT_PATH", "constant", 0, None),
        ("Config", "class", 0, None),
        ("reload", "method", 1, "Config"),
        ("parse_line", "function", 2, "reload"),
        ("load_config", "function", 0, None),
    ]
    assert out.lines == len((repo / "pkg/config.py").read_text().splitlines())
    text = out.summary()
    assert "reload (nested in Config)" in text
    cut = tools.outline("pkg/config.py", max_results=2).summary()
    assert "Config" in cut and "load_config" not in cut and "and 3 more definitions" in cut
    js = [(e.name, e.kind) for e in tools.outline("web/lib/format.js").entries]
    assert ("formatPrice", "function") in js and ("Widget", "require") not in js and "SAMPLE" in dict(js)


def test_outline_of_a_bare_file_name_and_of_bad_paths(tools: CodeTools) -> None:
    out = tools.outline("config.py")
    assert out.path == "pkg/config.py"
    assert out.other_candidates == ("pkg/_vendor/config.py",)  # build/ is ignored; test_config.py is another name
    with pytest.raises(ToolError, match=r"'\.\.'"):
        tools.outline("../outside.py")
    with pytest.raises(ToolError, match="does not exist"):
        tools.outline("pkg/missing.py")


# --- concept search -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("Where are retries with backoff handled?", "attempt_again"),
        ("Which code renders the progress bar?", "render"),
        ("configuration file loading", "load_config"),
    ],
)
def test_concept_search_finds_the_function(tools: CodeTools, question: str, name: str) -> None:
    result = tools.search_concepts(question)
    assert result.hits[0].name == name, result.summary()
    assert "where" not in result.terms and "handled" not in result.terms


# --- the index itself --------------------------------------------------------------------------------


def test_only_changed_files_are_reparsed(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "def one():\n    pass\n", "b.py": "def two():\n    pass\n"})
    ix = SymbolIndex(CodeRoot(repo), tmp_path / "cache")
    assert (ix.refresh().parsed, ix.refresh().parsed) == (2, 0)
    os.utime(repo / "a.py", ns=(1, 1))  # touched, same content: read again but not parsed
    assert ix.refresh().parsed == 0
    (repo / "a.py").write_text("\n\ndef one():\n    pass\n")
    stats = ix.refresh()
    assert (stats.parsed, stats.files) == (1, 2)
    row = ix.db.execute("SELECT s.line FROM symbols s JOIN files f ON f.hash = s.hash WHERE s.name = 'one'").fetchall()
    assert row == [(3,)]
    (repo / "b.py").unlink()
    assert ix.refresh().removed == 1
    assert ix.db.execute("SELECT count(*) FROM symbols WHERE name = 'two'").fetchone()[0] == 0


def test_symlinks_never_lead_the_index_outside(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "outside", {"secret.py": "def leaked_secret():\n    pass\n"})
    repo = write_tree(tmp_path / "repo", {"ok.py": "def fine():\n    pass\n"})
    (repo / "linked_dir").symlink_to(outside, target_is_directory=True)
    (repo / "linked.py").symlink_to(outside / "secret.py")
    tools = CodeTools(repo, cache_dir=tmp_path / "cache")
    assert tools.find_definition("leaked_secret").definitions == ()
    assert tools.find_definition("fine").definitions[0].path == "ok.py"
    with pytest.raises(ToolError):
        tools.outline("linked.py")


def test_the_cache_is_never_written_inside_the_root(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "def one():\n    pass\n"})
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    ix = SymbolIndex(CodeRoot(repo), repo / ".cache")  # asked for a place inside the root
    ix.refresh()
    assert not ix.path.startswith(str(repo.resolve()))
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before


@pytest.mark.parametrize("damage", ["garbage", "foreign", "other_root"])
def test_a_corrupt_or_foreign_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "def one():\n    pass\n"})
    cache = tmp_path / "cache"
    ix = SymbolIndex(CodeRoot(repo), cache)
    ix.refresh()
    path = ix.path
    ix.close()
    if damage == "garbage":
        for suffix in ("-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        Path(path).write_bytes(b"not a database at all" * 100)
    elif damage == "foreign":
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE symbols (name TEXT)")
            db.execute("INSERT INTO symbols VALUES ('planted')")
    else:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value = '/somewhere/else' WHERE key = 'root'")
            db.execute("INSERT INTO symbols VALUES ('x', 'planted', 'class', 1, 1, NULL, 0, '', '')")
    again = SymbolIndex(CodeRoot(repo), cache)
    assert again.refresh().parsed == 1
    names = {n for (n,) in again.db.execute("SELECT name FROM symbols")}
    assert names == {"one"}


def test_files_with_no_grammar_get_pattern_definitions_only(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "native/lib.rs": "/// A widget.\npub struct Gadget {\n    id: u32,\n}\n\npub fn make_gadget() -> Gadget {\n    Gadget { id: 1 }\n}\n",
            "notes.md": "The struct Gadget is defined in native/lib.rs.\n",
        },
    )
    tools = CodeTools(repo, cache_dir=tmp_path / "cache")
    assert places(tools.find_definition("Gadget")) == [("native/lib.rs", 2, "class")]
    assert places(tools.find_definition("make_gadget")) == [("native/lib.rs", 6, "function")]
    assert tools.find_references("Gadget").summary().startswith("No references"), "no grammar: no references"
    assert tools.outline("notes.md").entries == ()


def test_two_indexes_of_one_root_share_the_cache_without_duplicates(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"a.py": "def one():\n    pass\n"})
    first = SymbolIndex(CodeRoot(repo), tmp_path / "cache")
    second = SymbolIndex(CodeRoot(repo), tmp_path / "cache")
    assert first.path == second.path
    first.refresh()
    (repo / "b.py").write_text("def two():\n    one()\n")
    assert second.refresh().parsed == 1
    assert first.refresh().parsed == 0
    names = [n for (n,) in first.db.execute("SELECT name FROM symbols ORDER BY name")]
    assert names == ["one", "two"]


def test_implementations_before_overloads_and_abstract_declarations(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "repo",
        {
            "loops/base.py": "import abc\n\n\nclass Loop(abc.ABC):\n    def run(self):\n        raise NotImplementedError\n\n    @abc.abstractmethod\n    def stop(self):\n        pass\n",
            "loops/impl.py": "from loops.base import Loop\n\n\nclass Real(Loop):\n    def run(self):\n        return 1\n\n    def stop(self):\n        return 2\n",
            "loops/api.py": "from typing import overload\n\n\n@overload\ndef get(x: int) -> int: ...\n@overload\ndef get(x: str) -> str: ...\ndef get(x):\n    return x\n",
        },
    )
    tools = CodeTools(repo, cache_dir=tmp_path / "cache")
    assert places(tools.find_definition("run")) == [("loops/impl.py", 5, "method"), ("loops/base.py", 5, "abstract")]
    assert places(tools.find_definition("stop"))[0] == ("loops/impl.py", 8, "method")
    assert places(tools.find_definition("get")) == [("loops/api.py", 8, "function"), ("loops/api.py", 5, "overload"), ("loops/api.py", 7, "overload")]


def test_a_lower_case_name_finds_the_class_in_another_case(tmp_path: Path) -> None:
    (tmp_path / "console.py").write_text(
        "class Console:\n    pass\n\n\nclass Progress:\n    def console(self):\n        return Console()\n", encoding="utf-8"
    )
    tools = CodeTools(tmp_path, cache_dir=tmp_path.parent / "cache-case")
    found = [(p.kind, p.qualified, p.line) for p in tools.find_definition("console").definitions]
    assert found == [("class", "Console", 1), ("method", "Progress.console", 6), ("module", "console", 1)]
    assert [p.qualified for p in tools.find_definition("Console").definitions] == ["Console"], "a capital is exact"


def test_a_module_name_is_defined_by_its_file(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "codec").mkdir(parents=True)
    (tmp_path / "pkg" / "codec" / "__init__.py").write_text("# licence\n\"\"\"Encoders.\"\"\"\n", encoding="utf-8")
    (tmp_path / "pkg" / "utils.py").write_text("# Copyright\n\n\"\"\"Small helpers.\"\"\"\n\nX = 1\n", encoding="utf-8")
    (tmp_path / "app.py").write_text("from pkg import utils\n", encoding="utf-8")
    tools = CodeTools(tmp_path, cache_dir=tmp_path.parent / "cache-module")
    utils = tools.find_definition("utils").definitions
    assert [(p.kind, p.path, p.line) for p in utils] == [("module", "pkg/utils.py", 1), ("import", "app.py", 1)]
    assert utils[0].doc == "Small helpers.", "the docstring after a leading comment"
    assert [(p.kind, p.path) for p in tools.find_definition("codec").definitions] == [("module", "pkg/codec/__init__.py")]
