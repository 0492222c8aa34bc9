"""Which class or module a use such as ``receiver.name`` belongs to, as far as one file can tell.

Every reference row gets a qualifier (``qual``), used by ``find_references("Class.method")``:

- ``self.m`` / ``cls.m`` (Python), ``this.m`` (JS/TS) inside a class -> that class;
- ``s.m`` where ``s`` is a Go method's receiver, a Python parameter annotated with a type
  (``msg: Message``), or a local assigned from a capitalised call (``m = Message()``; JS/TS at module
  level: ``const c = new Client()``) -> that type;
- ``Name.m`` with a capitalised ``Name``, or a name the file imports (``json.dumps``, ``fmt.Println``)
  -> that name;
- a bare ``m(...)`` or ``m`` that the file imports with ``from pkg.mod import m`` -> ``mod``;
- anything else (``x.m`` for a variable of unknown type, ``f().m``, ``super().m``) -> ``""``: the index
  cannot tell.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcore.tools.code.extract import Symbol

_SELF = frozenset({"self", "cls", "this"})
_MEMBER_NODES = {"attribute": "object", "member_expression": "object", "selector_expression": "operand"}
_FROM_IMPORT = re.compile(r"^from\s+\.*([\w.]*?)\.?(\w*)\s+import\b")
_SCAN = 200
"""How many earlier spans are looked at to find the one enclosing a line."""


class Receivers:
    """Class spans, function spans, typed locals and imports of one file (see the module docstring).

    Args:
        symbols: the file's definitions and imports.
        bindings: ``(line, variable, type)`` for each typed local (its line: where it is bound).
    """

    def __init__(self, symbols: Iterable[Symbol], bindings: Iterable[tuple[int, str, str]]) -> None:
        symbols = list(symbols)
        self.classes = sorted((s.line, s.end_line, s.name) for s in symbols if s.kind in ("class", "interface"))
        self.functions = sorted(
            (s.line, s.end_line, s.name) for s in symbols if s.kind in ("function", "method", "abstract", "overload")
        )
        self._class_starts = [c[0] for c in self.classes]
        self._fn_starts = [f[0] for f in self.functions]
        self.imported: set[str] = set()
        self.from_module: dict[str, str] = {}
        for s in symbols:
            if s.kind in ("import", "require"):
                self.imported.add(s.name)
                m = _FROM_IMPORT.match(s.signature)
                if m and (m.group(2) or m.group(1)):
                    self.from_module[s.name] = m.group(2) or m.group(1).rsplit(".", 1)[-1]
        self.bindings = {(self._function_at(line), var): typ for line, var, typ in bindings}

    @staticmethod
    def _innermost(spans: list[tuple[int, int, str]], starts: list[int], line: int) -> tuple[int, int, str] | None:
        i = bisect.bisect_right(starts, line) - 1
        stop = max(-1, i - _SCAN)
        while i > stop:
            if spans[i][0] <= line <= spans[i][1]:
                return spans[i]
            i -= 1
        return None

    def _function_at(self, line: int) -> int:
        span = self._innermost(self.functions, self._fn_starts, line)
        return span[0] if span else 0

    def class_at(self, line: int) -> str:
        span = self._innermost(self.classes, self._class_starts, line)
        return span[2] if span else ""

    def qualifier(self, node: Any, name: str, kind: str) -> str:
        """The class or module the use ``node`` (the captured name) belongs to, or ``""``."""
        line = node.start_point[0] + 1
        parent = node.parent
        if kind == "import":
            return self.from_module.get(name, "")
        field = _MEMBER_NODES.get(parent.type) if parent is not None else None
        if field is None:  # a bare name: m(...) or m
            return self.from_module.get(name, "")
        receiver = parent.child_by_field_name(field)
        if receiver is None or receiver.start_byte == node.start_byte:
            return ""
        text = receiver.text.decode("utf-8", "replace")
        if receiver.type == "this" or text in _SELF:
            return self.class_at(line)
        if receiver.type != "identifier":
            return ""
        bound = self.bindings.get((self._function_at(line), text)) or self.bindings.get((0, text))
        if bound:
            return bound
        if text in self.imported or text[:1].isupper():
            return text
        return ""
