"""The shape of the package: import direction, third-party boundaries, the error tree, the public API.

Every module in ``agentcore/`` is parsed with ``ast`` (nothing is imported for the import checks).
A module belongs to a *layer*: its subpackage (``agentcore/storage/sqlite/store.py`` is in
``storage``) or, for the few top-level modules, its own name. ``LAYERS`` says, exactly and without
transitivity, which layers each layer may import; modules of one layer may import each other. The
checker is a pure function of module sources, and ``test_the_checker_reports_a_forbidden_import``
runs it on a throwaway package so it is shown able to fail.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

import pytest

import agentcore
from agentcore import errors

PACKAGE = Path(agentcore.__file__).resolve().parent

_BELOW_RUNTIME = {"errors", "core", "storage", "models", "tools", "roles", "scheduling", "event_loop"}

LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "storage": {"core", "errors"},
    # event_loop: the loop agentcore's sync entry points run on (sub-ms timers); imports nothing of ours
    "event_loop": set(),
    "models": {"core", "errors", "event_loop"},  # OpenAIChatModel.complete_sync runs its own loop
    "tools": {"core", "storage", "models", "errors", "event_loop"},  # the MCP client's connection thread
    "roles": {"core", "models", "tools", "errors"},
    "scheduling": {"core", "tools", "errors"},
    # export: runs as OpenTelemetry traces; below runtime so Agent(tracer_provider=) can hook the commit
    "export": {"core", "storage", "errors"},
    "runtime": {*_BELOW_RUNTIME, "export"},
    "replay": {*_BELOW_RUNTIME, "runtime"},
    "inspection": {"core", "storage", "errors"},
    "cli": {*_BELOW_RUNTIME, "runtime", "replay", "inspection", "export", "version"},
    "testing": {*_BELOW_RUNTIME, "runtime", "replay", "inspection"},
    "events": {"core"},
    "version": set(),  # the version string alone: `agentcore --version` reads it without loading the package's names
    "__init__": {*_BELOW_RUNTIME, "runtime", "replay", "inspection", "version"},
    "__main__": {"cli"},
}
"""Layer -> the layers it may import (exact: nothing is inherited from the rows it names)."""

THIRD_PARTY_ONLY_IN: dict[str, tuple[str, ...]] = {
    "openai": ("models.openai",),
    "sqlite_utils": ("storage.sqlite",),
    # tools.code: the symbol index is the code toolkit's own cache (tools/code/index.py), not the event log
    "sqlite3": ("storage.sqlite", "tools.code"),
    "psycopg": ("storage.postgres",),  # the optional PostgreSQL store (agentcore[postgres])
    "psycopg_pool": ("storage.postgres",),
    "tree_sitter": ("tools.code",),
    "tree_sitter_python": ("tools.code",),
    "tree_sitter_javascript": ("tools.code",),
    "tree_sitter_typescript": ("tools.code",),
    "tree_sitter_go": ("tools.code",),
    "rapidfuzz": ("tools.code",),
    "click": ("cli",),
    "rich": ("cli",),
    "genai_prices": ("models.prices",),  # price data for LLMCalled.cost_usd, behind one function
    "pathspec": ("tools.code",),  # gitignore matching (GitIgnoreSpec on the re2 backend)
    "re2": ("tools.code",),  # linear-time regular expressions for model-supplied patterns
    "opentelemetry": ("export",),  # the optional `otel` extra: traces leave through export/ only
    "mcp": ("tools.mcp",),  # the optional `mcp` extra: MCP client tools and the MCP server
    "jsonschema": ("tools.mcp",),  # checks MCP tools' arguments against their servers' schemas (with mcp)
    "jsonpatch": ("core.json_patch",),  # RFC 6902: the one adapter maps its errors to PatchError
    "jsonpointer": ("core.json_patch",),
    "docstring_parser": ("tools.signature",),  # Google-style docstrings of tool functions  # RFC 6901 pointers (jsonpatch's own dependency, its errors)
}
"""A package (third-party or a stdlib driver) and the module prefixes that alone may import it."""

THIRD_PARTY = {
    "pydantic", "pydantic_core", "jsonpatch", "jsonpointer", "docstring_parser", "openai", "sqlite_utils", "click", "rich", "genai_prices", "pathspec", "re2",
    "psycopg", "psycopg_pool",
    # code-search index (tools.code)
    "tree_sitter", "tree_sitter_python", "tree_sitter_javascript", "tree_sitter_typescript", "tree_sitter_go",
    "rapidfuzz",
    "opentelemetry", "mcp", "jsonschema",
    # typing only, under TYPE_CHECKING (Unpack for **options on Python 3.10); installed with pydantic
    "typing_extensions",
}  # fmt: skip
"""Every third-party import must be one of these (declared dependencies, or pydantic's own core)."""

IMPURE_IMPORTS = {"os", "subprocess", "socket", "sqlite3", "shutil", "pathlib", "asyncio", "threading", "urllib"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``agentcore/tools/code/search.py`` -> ``tools.code.search``; a subpackage's ``__init__`` is the package."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def sources(package: Path = PACKAGE) -> dict[str, str]:
    """Module name -> source text, for every module of ``package``."""
    return {
        module_name(p, package): p.read_text(encoding="utf-8")
        for p in sorted(package.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


MODULES = sources()


def layer(module: str) -> str:
    return module.split(".")[0]


def agentcore_imports(module: str, source: str, modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported agentcore module) for every import in ``module``, in functions and TYPE_CHECKING too."""
    packages = {m for m in modules if any(other.startswith(m + ".") for other in modules)}
    parts = [] if module == "__init__" else module.split(".")
    package = parts if module in packages else parts[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name[len("agentcore.") :]) for a in node.names if a.name.startswith("agentcore.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "agentcore" or (node.module or "").startswith("agentcore."):
                target = (node.module or "")[len("agentcore.") :]
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                out.append((node.lineno, sub if sub in modules else (target or "__init__")))
    return out


def violations(modules: dict[str, str], layers: dict[str, set[str]]) -> list[str]:
    """Every import that points where its layer may not: ``"module:line imports target"``."""
    bad = []
    for module, source in sorted(modules.items()):
        own = layer(module)
        if own not in layers:
            bad.append(f"{module}: its layer {own!r} has no row in LAYERS")
            continue
        for line, target in sorted(set(agentcore_imports(module, source, set(modules)))):
            theirs = layer(target) if target else "__init__"
            if theirs != own and theirs not in layers[own]:
                bad.append(f"{module}:{line} imports agentcore.{target} ({own} may not import {theirs})")
    return bad


def third_party_imports(source: str) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        out += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] != "agentcore"]
    return out


# --------------------------------------------------------------------------------------------


def test_every_row_names_a_real_layer_and_every_layer_has_a_row() -> None:
    real = {layer(m) for m in MODULES}
    assert set(LAYERS) == real, (
        f"rows for layers that do not exist: {sorted(set(LAYERS) - real)}; "
        f"layers with no row: {sorted(real - set(LAYERS))}"
    )
    named = {d for row in LAYERS.values() for d in row}
    assert named <= real, f"rows name layers that do not exist: {sorted(named - real)}"


def test_imports_point_down_the_layers() -> None:
    bad = violations(MODULES, LAYERS)
    assert not bad, "imports against the layer table:\n" + "\n".join(bad)


def test_the_checker_reports_a_forbidden_import(tmp_path: Path) -> None:
    pkg = tmp_path / "agentcore"
    files = {
        "__init__.py": "from agentcore.runtime.agent import Agent\n",
        "errors.py": "",
        "core/__init__.py": "",
        "core/fold.py": "from agentcore.errors import X\n\ndef f():\n    from agentcore.storage.base import Y\n",
        "storage/__init__.py": "",
        "storage/base.py": "from ..core import fold\nfrom agentcore.runtime import agent\n",
        "runtime/__init__.py": "",
        "runtime/agent.py": "from agentcore.storage.base import Y\nfrom . import helpers\n",
        "runtime/helpers.py": "",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    table = {"errors": set(), "core": {"errors"}, "storage": {"core"}, "runtime": {"storage"}, "__init__": {"runtime"}}
    assert violations(sources(pkg), table) == [
        "core.fold:4 imports agentcore.storage.base (core may not import storage)",
        "storage.base:2 imports agentcore.runtime.agent (storage may not import runtime)",
    ]
    assert violations(sources(pkg), {**table, "storage": {"core", "runtime"}}) == [
        "core.fold:4 imports agentcore.storage.base (core may not import storage)"
    ]
    table.pop("runtime")
    assert "runtime.agent: its layer 'runtime' has no row in LAYERS" in violations(sources(pkg), table)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_third_party_packages_stay_behind_their_module(module: str) -> None:
    for line, top in third_party_imports(MODULES[module]):
        where = f"agentcore/{module.replace('.', '/')}:{line}"
        owners = THIRD_PARTY_ONLY_IN.get(top)
        if owners is not None:
            assert any(module == o or module.startswith(o + ".") for o in owners), f"{where}: only {owners} may import {top!r}"
        elif top not in sys.stdlib_module_names:
            assert top in THIRD_PARTY, f"{where} imports {top!r}, which is not a declared dependency"


REAL_CLOCK = "core.clock"
"""The one core module that reads the real clock and sleeps (``SystemClock``); the layers above take
a ``Clock`` and pass it in. Nothing else in core imports it, so the fold stays a function of the log."""


def test_only_the_layers_above_core_use_the_clock() -> None:
    for module in MODULES:
        if layer(module) == "core" and module != REAL_CLOCK:
            targets = {target for _, target in agentcore_imports(module, MODULES[module], set(MODULES))}
            assert REAL_CLOCK not in targets, f"{module} imports agentcore.{REAL_CLOCK}: the core never reads the time"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) in ("core", "errors") and m != REAL_CLOCK))
def test_the_core_stays_pure(module: str) -> None:
    tree = ast.parse(MODULES[module])
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in IMPURE_IMPORTS, f"{module} imports {name}: the core does no I/O"
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time", "monotonic"):
            if isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date", "time"):
                pytest.fail(f"{module}:{node.lineno} reads the clock ({node.value.id}.{node.attr}); pass times in")


def test_python_dash_m_agentcore_is_the_cli() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "agentcore", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout and "ask" in out.stdout


# --------------------------------------------------------------------------------------------
# the error tree


ERROR_CLASSES = {
    name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and cls.__module__ == errors.__name__
}


def drawn_tree() -> dict[str, str | None]:
    """Class name -> parent name, as drawn in the errors module docstring (the block after ``::``)."""
    block = (errors.__doc__ or "").split("::", 1)[-1].strip("\n").split("\n\n")[0]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        m = re.match(r"^([\s│├└─]*)([A-Z]\w+)", line)
        assert m, f"cannot read this line of the error tree: {line!r}"
        depth = len(m.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[m.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, m.group(2)))
    return parents


def test_every_error_derives_from_agentcore_error_and_has_a_docstring() -> None:
    assert "AgentcoreError" in ERROR_CLASSES
    for name, cls in ERROR_CLASSES.items():
        assert issubclass(cls, errors.AgentcoreError), f"{name} does not derive from AgentcoreError"
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), f"{name} needs a one-line docstring"


def test_the_docstring_draws_every_error_under_its_real_parent() -> None:
    drawn = drawn_tree()
    assert set(drawn) == set(ERROR_CLASSES), (
        f"missing from the tree: {sorted(set(ERROR_CLASSES) - set(drawn))}; "
        f"drawn but not defined: {sorted(set(drawn) - set(ERROR_CLASSES))}"
    )
    for name, cls in ERROR_CLASSES.items():
        parent = cls.__bases__[0].__name__ if name != "AgentcoreError" else None
        assert drawn[name] == parent, f"{name} is drawn under {drawn[name]} but derives from {parent}"


# --------------------------------------------------------------------------------------------
# the public API


def test_all_is_sorted_and_complete() -> None:
    exported = list(agentcore.__all__)
    assert exported == sorted(exported), "keep agentcore.__all__ sorted"
    assert len(exported) == len(set(exported)), "agentcore.__all__ has duplicates"
    public = {
        name
        for name, value in vars(agentcore).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | set(agentcore._LAZY)  # names imported on first use (PEP 562)
    unresolved = [name for name in agentcore._LAZY if getattr(agentcore, name, None) is None]
    assert not unresolved, f"agentcore._LAZY points at modules that lack {unresolved}"
    assert set(exported) == public, (
        f"in __all__ but not defined: {sorted(set(exported) - public)}; "
        f"public but not in __all__: {sorted(public - set(exported))}"
    )


FIRST_RELEASE_API = (
    "AddOpenQuestions Agent AgentcoreError AnswerQuestion AppendKnownFacts ArtifactNotFound ArtifactRef ArtifactStore "
    "ChatMessage ChatModel ChatRequest ChatResponse ConcurrencyError ConfigError Decision EVENT_ADAPTER Event "
    "EventStore FactInput JsonPatch MemoryArtifactStore MemoryEventStore ModelError ModelOutputError "
    "ModelRequestError ModelUnavailable NotAnAgentcoreDatabase OfflineCodeModel OpenAIChatModel PatchError Plan "
    "PlanError PlanRunner ReplacePlan ReplayMismatch RetryPolicy RunFailed RunInfo RunNotFound RunNotStarted "
    "RunResult RunState SQLiteEventStore SchemaTooNew SetStepStatus StatePatch Step StorageUnavailable StoreError "
    "Tool ToolCall ToolError ToolResult ToolRunner ToolSpec TraceError apply code_tools decode_event diff_states "
    "encode_event export_run fold import_trace plan_task read_trace replay_trace tool validate_plan"
).split()
"""``agentcore.__all__`` of 0.1.0, before the subpackages: every name must still import from ``agentcore``."""


def test_the_first_release_api_still_imports() -> None:
    missing = [name for name in FIRST_RELEASE_API if not hasattr(agentcore, name)]
    assert not missing, f"no longer importable from agentcore: {missing}"


def test_every_event_class_and_patch_op_imports_from_agentcore() -> None:
    import typing

    from agentcore.core.events import EVENT_TYPES
    from agentcore.core.patches import PatchOp

    ops = [t.__name__ for t in typing.get_args(typing.get_args(PatchOp)[0])]
    names = [cls.__name__ for cls in EVENT_TYPES.values()] + ops
    assert len(ops) >= 6 and len(names) >= 19
    assert [n for n in names if getattr(agentcore, n, None) is None] == []


def test_documented_module_paths_import() -> None:
    import agentcore.events as events
    import agentcore.testing as testing

    assert events.RunStarted is agentcore.RunStarted and events.decode_event is agentcore.decode_event
    assert testing.FakeClock and testing.assert_replays and testing.ScriptedChatModel
