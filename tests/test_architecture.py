"""The shape of the package: import direction, third-party boundaries, the error tree, the public API.

Every module in ``agentcore/`` is parsed with ``ast`` (nothing is imported for the import checks).
``ALLOWED`` is the one table to update when a module is added or its role changes: a module that
is not in it fails the test, so the table cannot fall behind the code.

A module may import the modules its row lists and, transitively, what those rows allow: the rule
keeps imports pointing down the layers, not away from shortcuts (``view`` may import ``patches``
because it may import ``state``, which does). Modules of one family (``llm`` and ``llm_*``,
``runtime`` and ``runtime_*``, ``cli`` and ``cli_*``, ``toolkits.*``) may import each other.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from functools import cache
from pathlib import Path

import pytest

import agentcore
from agentcore import errors

PACKAGE = Path(agentcore.__file__).resolve().parent

_CORE = {"errors", "plans", "patches", "events", "state"}
_STORAGE = {"migrations", "artifacts", "store", "sqlite_store", "sqlite_artifacts"}
_ROLES = {"state", "events", "patches", "plans", "llm", "tools", "errors"}
_SCHEDULING = {"plans", "state", "events", "tools", "errors", "artifacts", "clock", "readiness", "steps"}
_BELOW_RUNTIME = (
    _CORE
    | _STORAGE
    | _SCHEDULING
    | {"llm", "tools", "tool_payloads", "toolkits", "controller", "processor", "planner", "prompts", "scheduler"}
)
_TESTING = ("testing", "testing_models", "testing_clock")

ALLOWED: dict[str, set[str]] = {
    # the pure core (no I/O, no clock), and the clock itself (stdlib only)
    "errors": set(),
    "plans": {"errors"},
    "patches": {"plans", "errors"},
    "events": {"patches", "plans", "errors"},
    "state_model": {"events", "patches", "plans", "errors"},
    "state_patches": {"state_model", "events", "patches", "plans", "errors"},
    "state": {"state_model", "state_patches", "events", "patches", "plans", "errors"},
    "clock": set(),
    # storage
    "migrations": {"errors"},
    "artifacts": {"events", "errors"},
    "store": {"artifacts", "state", "events", "errors"},
    "sqlite_artifacts": {"migrations", "artifacts", "store", "state", "events", "errors"},
    "sqlite_store": {"sqlite_artifacts", "migrations", "artifacts", "store", "state", "events", "errors"},
    # models and tools
    "llm": {"errors"},
    "testing_models": {"llm", "errors"},
    "testing_clock": {"clock", "errors"},
    "tool_payloads": {"artifacts", "events", "errors"},
    "tools": {"tool_payloads", "artifacts", "events", "errors"},
    "toolkits": {"tools", "errors"},
    # the LLM roles
    "controller": _ROLES,
    "processor": _ROLES,
    "planner": _ROLES,
    "prompts": _ROLES,
    # scheduling
    "readiness": {"plans", "state", "events", "errors"},
    "steps": {"clock", "state", "events", "errors"},
    "scheduler": _SCHEDULING,
    # wiring and around it
    "runtime": _BELOW_RUNTIME,
    "trace": {
        "llm",
        "tools",
        "store",
        "sqlite_store",
        "artifacts",
        "events",
        "state",
        "errors",
        "testing_models",
        "runtime",
    },
    # record/replay build on trace files, so they get its row and trace itself
    "recorded": {"trace"},
    "replay": {"trace", "recorded"},
    "testing": {"trace", "recorded", "replay", "testing_models", "testing_clock"},
    "offline": {"llm", "tools", "events", "patches", "errors", "toolkits"},
    "inspect_run": {"store", "state", "events", "artifacts", "errors"},
    "view": {"store", "state", "events", "artifacts", "errors", "inspect_run"},
    "cli": {"*", *(f"-{m}" for m in _TESTING)},
    "__main__": {"cli"},
    "__init__": {"*", "-cli", *(f"-{m}" for m in _TESTING)},
}
"""Rule -> the agentcore modules it may import; ``"*"`` means any module but the ``"-name"`` ones."""

FAMILIES = ("llm", "runtime", "cli")
"""``<family>_<anything>`` follows the family's row, and family members may import each other."""

THIRD_PARTY_ONLY_IN: dict[str, tuple[str, ...]] = {
    "openai": ("llm",),
    "sqlite_utils": ("migrations", "sqlite_store", "sqlite_artifacts"),
    "click": ("cli",),
    "rich": ("cli", "progress"),
}
"""A third-party package and the rules (families included) of the only modules that may import it."""

THIRD_PARTY = {"pydantic", "pydantic_core", "jsonpatch", "openai", "sqlite_utils", "click", "rich"}
"""Every third-party import must be one of these (declared dependencies, or pydantic's own core)."""

PURE = ("errors", "plans", "patches", "events", "state")
IMPURE_IMPORTS = {"os", "subprocess", "socket", "sqlite3", "shutil", "pathlib", "asyncio", "threading", "urllib"}


def module_name(path: Path) -> str:
    """``agentcore/toolkits/code/search.py`` -> ``toolkits.code.search``; ``__init__`` of a subpackage is the package."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def rule(module: str) -> str | None:
    """The row of ``ALLOWED`` a module follows, or ``None`` when it has none."""
    if module in ALLOWED:
        return module
    head = module.split(".")[0]
    if head == "toolkits":
        return "toolkits"
    family = head.split("_")[0]
    if family in FAMILIES and "." not in module:
        return family
    return None


@cache
def reachable(row: str) -> frozenset[str]:
    """Every rule a row may import: its own entries and, transitively, theirs."""
    out: set[str] = set()
    for dep in ALLOWED[row]:
        if dep == "*" or dep.startswith("-"):
            continue
        out.add(dep)
        out |= reachable(dep)
    return frozenset(out)


def may_import(importer: str, imported: str) -> bool:
    a, b = rule(importer), rule(imported)
    assert a is not None and b is not None
    if a == b:
        return True
    row = ALLOWED[a]
    if "*" in row:
        return "-" + b not in row and "-" + imported not in row
    return b in reachable(a)


def agentcore_imports(module: str, source: str | None = None) -> list[tuple[int, str]]:
    """(line, imported agentcore module) for every import in ``module``, in functions and TYPE_CHECKING too."""
    path = MODULES.get(module)
    is_package = path is not None and path.name == "__init__.py"
    if source is None:
        assert path is not None
        source = path.read_text(encoding="utf-8")
    parts = [] if module == "__init__" else module.split(".")
    package = parts if is_package else parts[:-1]
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
                out.append((node.lineno, sub if sub in MODULES else (target or "__init__")))
    return out


def third_party_imports(module: str) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top != "agentcore" and top not in sys.stdlib_module_names:
                out.append((node.lineno, top))
    return out


# --------------------------------------------------------------------------------------------


def test_every_module_has_a_row() -> None:
    missing = sorted(m for m in MODULES if rule(m) is None)
    assert not missing, (
        f"modules with no row in ALLOWED (tests/test_architecture.py): {missing}; "
        "add each with the agentcore modules it may import"
    )


def test_the_table_names_only_known_rules() -> None:
    named = {d.lstrip("-") for row in ALLOWED.values() for d in row if d != "*"}
    assert named <= set(ALLOWED), f"rows name modules that have no row: {sorted(named - set(ALLOWED))}"


def test_the_checker_itself() -> None:
    assert not may_import("events", "state") and not may_import("state", "store")
    assert not may_import("llm", "events") and not may_import("planner", "store")
    assert not may_import("cli", "testing") and not may_import("__init__", "cli")
    assert not may_import("toolkits.code.search", "runtime") and not may_import("view", "runtime")
    assert may_import("view", "patches"), "allowed through state"
    assert may_import("llm_wire", "llm") and may_import("runtime_plans", "runtime") and may_import("cli", "view")
    assert rule("brand_new_module") is None and rule("toolkits.web.fetch") == "toolkits"
    source = (
        "from .models import A\nfrom ... import tools\nfrom ...events import B\nimport agentcore.state\n"
        "from agentcore import errors\nfrom agentcore import Agent\nfrom agentcore.toolkits.code import search\n"
    )
    found = {t for _, t in agentcore_imports("toolkits.code.files", source)}
    assert found == {"toolkits.code.models", "tools", "events", "state", "errors", "__init__", "toolkits.code.search"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    if rule(module) is None:
        pytest.fail(f"{module} has no row in ALLOWED")
    bad = [
        f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports agentcore.{target}"
        for line, target in sorted(set(agentcore_imports(module)))
        if target != module and (rule(target) is None or not may_import(module, target))
    ]
    assert not bad, f"{module} (row {rule(module)!r}) may not import these: " + "; ".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_third_party_packages_stay_behind_their_module(module: str) -> None:
    for line, top in third_party_imports(module):
        where = f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"
        assert top in THIRD_PARTY, f"{where} imports {top!r}, which is not a declared dependency"
        owners = THIRD_PARTY_ONLY_IN.get(top)
        if owners is not None:
            assert rule(module) in owners or module in owners, f"{where}: only {owners} may import {top!r}"


@pytest.mark.parametrize("module", PURE)
def test_the_core_stays_pure(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in IMPURE_IMPORTS, f"{module} imports {name}: the core does no I/O"
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time", "monotonic"):
            if isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date", "time"):
                pytest.fail(f"{module}:{node.lineno} reads the clock ({node.value.id}.{node.attr}); pass times in")


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
    }
    assert set(exported) == public, (
        f"in __all__ but not defined: {sorted(set(exported) - public)}; "
        f"public but not in __all__: {sorted(public - set(exported))}"
    )
