"""The offline model's processor: a code tool's payload (its ``summary()`` text) turned into facts.

Every fact value stays under ``FACT_BUDGET`` characters, so the controller sees it whole; a long list
is split into parts (``key``, ``key#2``, ...) at item boundaries, and a list that was cut says
``and N more``. A value the controller's view clipped is cut back to its last full item (``cut_back``), so no
clipping marker ever reaches a reply.
"""

from __future__ import annotations

import re
from typing import Any

FACT_BUDGET = 380
_OUTLINE_ALL = 15
"""A file answer lists nested definitions too when the file has at most this many."""
_PLACE = re.compile(
    r"^(?P<n>\d+)\. (?P<kind>\S+) (?P<name>\S+) at (?P<path>.+?):(?P<line>\d+) \[(?P<cls>\w+)\]: ?(?P<rest>.*)$"
)
_MORE = re.compile(r"^and (\d+) more")
_SITE = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+): ?(?P<text>.*)$")
_BINDINGS = {"import", "require", "export", "alias", "overload"}
_WHERE = {"test": "a test file", "vendored": "a vendored copy", "stub": "a type stub", "docs": "docs or examples"}


def cut_back(value: str, cut: int) -> str:
    """A fact ``value`` as a reply may quote it: when ``cut`` characters of it were not shown, the
    shown part is cut back to its last full item and ends in ``(and more)``."""
    if not cut:
        return value
    head = value.rstrip()
    end = max(head.rfind("; "), head.rfind(", "), head.rfind(". "))
    return (head[:end] if end > 0 else head).rstrip(" ,;") + " (and more)"


def parts(key: str, items: list[str], head: str, tail: str = "", sep: str = ", ") -> list[tuple[str, str]]:
    """``head`` + items joined by ``sep`` + ``tail``, split into facts of at most ``FACT_BUDGET`` characters."""
    out: list[tuple[str, str]] = []
    current = head
    for item in items:
        piece = item if current == head or current == "" else sep + item
        if len(current) + len(piece) > FACT_BUDGET and current not in (head, ""):
            out.append((key if not out else f"{key}#{len(out) + 1}", current + sep.rstrip()))
            current, piece = "", item
        current += piece
    current += tail
    out.append((key if not out else f"{key}#{len(out) + 1}", current))
    return out


def joined(facts: dict[str, str], key: str) -> str | None:
    """The value of ``key`` with its parts (``key#2``...) appended, or ``None``."""
    if key not in facts:
        return None
    out, n = [facts[key]], 2
    while f"{key}#{n}" in facts:
        out.append(facts[f"{key}#{n}"])
        n += 1
    return " ".join(out)


def _places(payload: str) -> tuple[list[dict[str, str]], int]:
    places: list[dict[str, str]] = []
    more = 0
    for line in payload.splitlines():
        if m := _PLACE.match(line):
            places.append(m.groupdict() | {"doc": ""})
        elif line.startswith("   ") and places:
            places[-1]["doc"] = line.strip()
        elif m := _MORE.match(line):
            more = int(m.group(1))
    return places, more


def _definition(symbol: str, payload: str, max_citations: int) -> list[tuple[str, str]]:
    key = f"definition:{symbol}"
    places, more = _places(payload)
    if not places:
        close = re.search(r"Did you mean: (.+?)\?\s*$", payload, re.M)
        text = f"no definition of {symbol!r} found"
        if close:
            text += f"; did you mean {close.group(1).replace(', ', ', or ')}?"
        else:
            text += " (checked every indexed file)."
        return [(key, text)]
    best = places[0]
    where = f" in {_WHERE[best['cls']]}" if best["cls"] in _WHERE else ""
    if best["kind"] in _BINDINGS:
        what = {"import": "an import", "require": "a require() line", "export": "an export", "alias": "an assignment",
                "overload": "typing.overload signatures"}.get(best["kind"], best["kind"])  # fmt: skip
        head = f"{symbol} has no definition here; it is only bound by {what} at {best['path']}:{best['line']}: `{best['rest'][:100]}`"
        twins = [p for p in places[1:] if p["kind"] == best["kind"] and p["kind"] in ("alias", "export")]
        if twins:  # SelectorEventLoop: one assignment per platform module
            also = "; ".join(f"{p['path']}:{p['line']}: `{p['rest'][:100]}`" for p in twins[: max_citations - 1])
            head += f", and the same way in {len(twins)} other place{'s' if len(twins) != 1 else ''}: {also}"
            places = [best] + [p for p in places[1:] if p not in twins]
    else:
        head = f"{symbol} is defined at {best['path']}:{best['line']} ({best['kind']} {best['name']}{where}): `{best['rest'][:100]}`"
        if best["doc"]:
            head += f" — {best['doc'][:120].rstrip('.')}"
    real = [p for p in places[1:] if p["kind"] not in _BINDINGS]
    owner = symbol.rsplit(".", 1)[0].rsplit(".", 1)[-1] if "." in symbol else ""
    if owner and best["name"].startswith(owner + "."):  # Table.__init__ found: other classes' are not rivals
        real = [p for p in real if p["name"].startswith(owner + ".")]
    rivals = [p for p in real if p["cls"] == best["cls"] and p["kind"] not in ("variable", "abstract")]
    if rivals and best["kind"] not in _BINDINGS:
        head += f". It is defined in {len(rivals) + 1} places; this one ranks first (most central)"
    bindings = [p for p in places[1:] if p["kind"] in _BINDINGS]
    hidden_are_bindings = places[-1]["kind"] in _BINDINGS  # bindings rank after definitions
    n_bindings = len(bindings) + (more if hidden_are_bindings else 0)
    imported = (
        f" (it is also imported or re-bound in {n_bindings} place{'s' if n_bindings != 1 else ''})"
        if n_bindings
        else ""
    )
    if not real:
        return [(key, head + imported + ".")]
    others = [
        f"{p['path']}:{p['line']} ({p['kind']}{', ' + p['cls'] if p['cls'] != 'source' else ''})"
        for p in real[: max_citations - 1]
    ]
    hidden = len(real) - len(others) + (0 if hidden_are_bindings else more)
    tail = (f" and {hidden} more" if hidden else "") + imported + "."
    return parts(key, others, head + ". Other definitions: ", tail)


def _references(symbol: str, payload: str, max_citations: int) -> list[tuple[str, str]]:
    key = f"usages:{symbol}"
    head_m = re.match(r"^(\d+) references to .* in (\d+) files((?: that resolve to| within) [^(]+)?", payload)
    if not head_m:
        where = re.search(r"were found in (\S+?)\.?(?:\s|\(|$)", payload)
        within = f" in {where.group(1)}" if where else ""
        return [
            (key, f"no uses of {symbol!r} found{within} (calls, imports, attribute uses or mentions)" + _left_out(payload))
        ]
    groups: list[tuple[str, int, list[str], int]] = []
    for line in payload.splitlines()[1:]:
        if m := re.match(r"^(calls|imports|attributes|mentions|unresolved) \((\d+)\):$", line):
            groups.append((m.group(1), int(m.group(2)), [], 0))
        elif (m := _SITE.match(line)) and groups:
            groups[-1][2].append(f"{m.group('path')}:{m.group('line')}")
    label = {"calls": "called", "imports": "imported", "attributes": "used as an attribute", "mentions": "mentioned",
             "unresolved": "used on a receiver whose class the index cannot tell"}  # fmt: skip
    items = []
    for kind, n, sites, _hidden in groups:
        shown = sites[:max_citations]
        rest = n - len(shown)
        sites_text = ", ".join(shown) + (f" and {rest} more" if rest else "")
        items.append(f"{label[kind]} {n} time{'s' if n != 1 else ''} at {sites_text}")
    n_uses, n_files = int(head_m.group(1)), int(head_m.group(2))
    narrowed = (head_m.group(3) or "").rstrip()
    if n_uses == 1:
        narrowed = narrowed.replace(" that resolve ", " that resolves ")
    head = f"{symbol} has {n_uses} use{'s' if n_uses != 1 else ''}{narrowed} in {n_files} file{'s' if n_files != 1 else ''}: "
    if n_uses == 0 and narrowed:
        head = f"{symbol} has no use the index can tie{narrowed.replace(' that resolve', '')}: "
    note = re.search(r"^\(unresolved: .*?; (.+)\)$", payload, re.M)
    tail = (f" ({note.group(1)})" if note else "") + _left_out(payload) + "."
    return parts(key, items, head, tail, sep="; ")


def _left_out(payload: str) -> str:
    m = re.search(r"(\d+) uses of that name belong to other classes or modules", payload)
    out = f"; {m.group(1)} uses of that name belong to other classes or modules (left out)" if m else ""
    m = re.search(r"(\d+) uses of that name (outside \S+) are left out", payload)
    return out + (f"; {m.group(1)} use{'s' if m.group(1) != '1' else ''} {m.group(2)} left out" if m else "")


def _outline(path: str, payload: str, ok: bool, error: str | None) -> list[tuple[str, str]]:
    key = f"file:{path}"
    if not ok:
        return [(key, f"{path} could not be read: {error or payload.strip()[:200]}")]
    first = payload.splitlines()[0] if payload else ""
    m = re.match(r"^(?P<real>.+?): (?P<lines>\d+) lines", first)
    if not m:
        return [(key, f"{path}: {first[:300]}")]
    real = m.group("real")
    top: list[str] = []
    every: list[str] = []
    minor = 0
    for line in payload.splitlines()[1:]:
        e = re.match(r"^\s*(\d+)\| (\s*)(\S+) (\S+)(?: \(nested in (\S+)\))?", line)
        if not e:
            continue
        kind, name = e.group(3), e.group(4)
        if kind in ("variable", "alias", "overload", "export") or (kind == "constant" and name.startswith("_")):
            minor += 1  # module-level variables and re-bindings are counted, not listed
            continue
        qualified = f"{e.group(5)}.{name}" if e.group(5) else name
        every.append(f"{kind} {qualified} ({real}:{e.group(1)})")
        if not e.group(2):
            top.append(every[-1])
    entries = every if len(every) <= _OUTLINE_ALL else top
    nested = len(every) - len(top) if entries is top else 0
    more = next((int(x.group(1)) for x in map(_MORE.match, payload.splitlines()) if x), 0)
    named = f"{real}" if real == path else f"{real} (the best match for {path})"
    if "no definitions" in first:
        return [(key, f"{named} has {m.group('lines')} lines and no definitions the index can read.")]
    notes = (
        (minor, f"{minor} variables and re-bindings not listed"),
        (nested, f"plus {nested} nested definitions (methods and inner functions)"),
        (more, f"and {more} more not listed"),
    )
    extra = [text for count, text in notes if count]
    tail = ("; " + ", ".join(extra) if extra else "") + "."
    others = re.search(r"^other files with this name: (.+)$", payload, re.M)
    if others:
        tail += f" Other files named like this: {others.group(1)[:150]}."
    return parts(key, entries, f"{named} has {m.group('lines')} lines; it defines ", tail)


def _members(cls: str, payload: str, ok: bool, error: str | None) -> list[tuple[str, str]]:
    """``members:CLASS``: the class's definition and each member, cited."""
    key = f"members:{cls}"
    first = payload.splitlines()[0] if payload else ""
    m = re.match(r"^(?P<path>.+?): \d+ lines, class (?P<name>\S+) at line (?P<line>\d+), (?P<n>\d+|no) members", first)
    if not ok or not m:
        return [(key, f"no class named {cls!r} found ({error or first[:200]})")]
    path = m.group("path")
    items = []
    for line in payload.splitlines()[1:]:
        e = re.match(r"^\s*(\d+)\| \s*(\S+) (\S+)", line)
        if e:
            items.append(f"{e.group(2)} {e.group(3)} ({path}:{e.group(1)})")
    more = next((int(x.group(1)) for x in map(_MORE.match, payload.splitlines()) if x), 0)
    head = f"class {m.group('name')} is defined at {path}:{m.group('line')}"
    if not items:
        return [(key, head + " and has no members the index can read.")]
    tail = (f" and {more} more" if more else "") + "."
    return parts(key, items, f"{head}; its {m.group('n')} members: ", tail)


def _concepts(payload: str) -> list[tuple[str, str]]:
    places, more = _places(payload)
    if not places:
        return [
            ("concepts", "I found no code matching that description; name a function, class or file to search for.")
        ]
    source = [p for p in places if p["cls"] == "source"] or places
    top = source[:5]
    items = [
        f"{p['name']} ({p['kind']}) at {p['path']}:{p['line']}" + (f" — {p['rest'][:110]}" if p["rest"] else "")
        for p in top
    ]
    hidden = more + len(places) - len(top)
    caveat = "" if source is not places else " (none of them in the main source files)"
    head = f"Best guess from names, docstrings and comments{caveat} — I am not certain these are what you mean: "
    return parts("concepts", items, head, (f"; and {hidden} more matches." if hidden else "."), sep="; ")


def _text_search(query: str, payload: str, ok: bool, error: str | None, max_citations: int) -> list[tuple[str, str]]:
    key = f"text:{query}"
    m = re.match(r"^(\d+) match", payload)
    if not ok:  # a failed search (a timeout, a refused pattern) is not "not found"
        return [(key, f"The text search for {query!r} failed: {error or payload.strip()[:200]}")]
    if not m:
        return [(key, f"{query!r} does not appear anywhere in the files (text search).")]
    found = [s for s in map(_SITE.match, payload.splitlines()) if s]
    quoted = re.compile(r"[\"']" + re.escape(query) + r"[\"']")
    found.sort(key=lambda s: not quoted.search(s.group("text")))  # "OPENAI_BASE_URL" in quotes: where it is read
    sites = [f"{s.group('path')}:{s.group('line')}" for s in found]
    shown = sites[:max_citations]
    total = int(m.group(1))
    tail = f" and {total - len(shown)} more." if total > len(shown) else "."
    return parts(key, shown, f"{query} appears {total} time(s) as text, at ", tail)


def facts_for(
    tool: str, args: dict[str, Any], payload: str, ok: bool, error: Any, max_citations: int
) -> list[tuple[str, str]]:
    """The ``(key, value)`` facts for one tool result (none for a tool the model does not read)."""
    err = str(error) if error else None
    if tool == "find_definition":
        symbol = str(args.get("symbol", ""))
        failed = f"The search for a definition of {symbol!r} failed: {err}"
        found = _definition(symbol, payload, max_citations) if ok else [(f"definition:{symbol}", failed)]
    elif tool == "find_references":
        symbol = str(args.get("symbol", ""))
        failed = f"The search for uses of {symbol!r} failed: {err}"
        found = _references(symbol, payload, max_citations) if ok else [(f"usages:{symbol}", failed)]
    elif tool == "outline" and args.get("members_of"):
        found = _members(str(args["members_of"]), payload, ok, err)
    elif tool == "outline":
        found = _outline(str(args.get("path", "")), payload, ok, err)
    elif tool == "search_concepts":
        found = _concepts(payload) if ok else [("concepts", f"The concept search failed: {err}")]
    elif tool == "search_code":
        query = str(args.get("query", ""))
        if args.get("regex"):
            query = re.sub(r"\\(.)", r"\1", query.replace("\\b", ""))
        found = _text_search(query, payload, ok, err, max_citations)
    else:
        return []
    return found
