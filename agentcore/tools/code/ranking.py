"""How candidates are ordered: what kind of file a path is, how central a file is, and words from identifiers.

Ranking a definition (best first), in this order of keys:

1. not an import or ``require`` line (those come last even inside the place named: "who calls classify in
   the offline model" must not answer with offline.py's import of it), then it lies in the package, file or
   class the question names (``scope``), when one is named;
2. a real definition (class, function, method, type, constant) before a variable, a ``typing.overload``
   signature or an abstract method (``@abstractmethod``, or a body that only raises ``NotImplementedError``), then re-bindings
   (``Name = other.Name``, ``export { a }``) and last imports and ``require`` lines;
3. the kind of file: source, then tests, then docs and examples, then vendored copies
   (``_vendor/``, ``node_modules/``, ``site-packages/`` inside the root), then stubs (``.pyi``, ``.d.ts``);
   a source file's alias or variable comes before a test file's definition (``main = TestProgram`` before
   a test's ``def main``), and imports always come last;
4. current code before a legacy copy (``v1/``, ``legacy/``, ``deprecated/``, ``compat/``: pydantic's ``v1``),
   public modules before private ones (a ``_name`` file or directory; a top-level definition a package's
   ``__init__`` imports counts as public), top-level and class members before functions nested in functions;
5. how central the file is: PageRank over the graph of files referencing names other files define;
6. shorter paths, then the path itself (only to break ties).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise

SOURCE, TEST, DOCS, VENDORED, STUB = 0, 1, 2, 3, 4
PATH_CLASS_NAMES = {SOURCE: "source", TEST: "test", DOCS: "docs", VENDORED: "vendored", STUB: "stub"}

_TEST_DIRS = {"test", "tests", "testing", "__tests__", "spec", "specs", "testdata", "test_data", "fixtures"}
_DOC_DIRS = {"doc", "docs", "example", "examples", "demo", "demos", "sample", "samples", "tutorial", "benchmarks"}
_VENDOR_DIRS = {"_vendor", "vendor", "vendored", "node_modules", "site-packages", "dist-packages", "third_party",
                "third-party", "bower_components"}  # fmt: skip
_TEST_FILE = re.compile(r"^(?:test_.*\.py|.*_test\.(?:py|go)|.*\.(?:test|spec)\.[cm]?[jt]sx?|conftest\.py)$")


def path_class(path: str) -> int:
    """``SOURCE``, ``TEST``, ``DOCS``, ``VENDORED`` or ``STUB`` for a '/'-separated relative path."""
    parts = path.lower().split("/")
    name = parts[-1]
    if name.endswith((".pyi", ".d.ts", ".d.mts", ".d.cts")):
        return STUB
    dirs = parts[:-1]
    if any(d in _VENDOR_DIRS for d in dirs) or name.endswith(".min.js"):
        return VENDORED
    if _TEST_FILE.match(name) or any(d in _TEST_DIRS or d.endswith(("_test", "_tests")) for d in dirs):
        return TEST
    if any(d in _DOC_DIRS for d in dirs) or name.endswith((".md", ".rst", ".txt")):
        return DOCS
    return SOURCE


BINDING_ORDER = {
    "class": 0, "function": 0, "method": 0, "type": 0, "interface": 0, "enum": 0, "namespace": 0, "constant": 0,
    "variable": 1, "overload": 1, "abstract": 1, "module": 1, "alias": 2, "export": 2, "import": 3, "require": 3,
}  # fmt: skip
"""Kind -> rank: real definitions first, imports and ``require`` lines last."""


_LEGACY_DIRS = {"v1", "legacy", "deprecated", "compat", "_compat", "old"}


def is_legacy(path: str) -> bool:
    """Whether ``path`` lies in a directory kept for old callers (``pydantic/v1/``, ``legacy/``, ``compat/``)."""
    return any(d in _LEGACY_DIRS for d in path.lower().split("/")[:-1])


def is_private(path: str) -> bool:
    """Whether a file or directory on ``path`` is private by the Python convention (``_impl.py``, ``_vendor/``)."""
    return any(p.startswith("_") and not p.startswith("__") for p in path.split("/"))


def scope_matches(scope: str, path: str, container: str | None) -> bool:
    """Whether a question's ``scope`` (``urllib``, ``email/message.py``, ``http.client``, ``Request``) names this place."""
    s = scope.strip().strip("/").lower()
    if not s:
        return False
    if container is not None and container.lower() == s:
        return True
    p = path.lower()
    stem = p.rsplit(".", 1)[0] if "." in p.rsplit("/", 1)[-1] else p
    parts = stem.split("/")
    if "/" in s or s.endswith((".py", ".js", ".ts", ".go", ".tsx", ".jsx")):
        return p.endswith(s) or p == s
    names = s.split(".")
    for i in range(len(names)):  # "importlib.resources" asked of the importlib package itself: "resources"
        dotted = "/".join(names[i:])
        if (
            dotted in parts
            or stem.endswith("/" + dotted)
            or stem == dotted
            or ("/" + dotted + "/") in ("/" + stem + "/")
            or (parts[-1] == "__init__" and len(parts) > 1 and parts[-2] == dotted)
        ):
            return True
    return False


def pagerank(edges: Iterable[tuple[str, str, float]], nodes: Iterable[str], damping: float = 0.85) -> dict[str, float]:
    """PageRank of ``nodes`` over weighted directed ``edges`` (source, target, weight); ranks sum to 1.

    Dangling nodes spread their rank evenly. 30 power iterations (enough for ordering, not for 6 digits).
    """
    names = list(dict.fromkeys(nodes))
    n = len(names)
    if n == 0:
        return {}
    idx = {name: i for i, name in enumerate(names)}
    out_weight = [0.0] * n
    incoming: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for src, dst, w in edges:
        if src in idx and dst in idx and src != dst and w > 0:
            incoming[idx[dst]].append((idx[src], w))
            out_weight[idx[src]] += w
    rank = [1.0 / n] * n
    dangling = [i for i in range(n) if out_weight[i] == 0]
    for _ in range(30):
        spread = damping * sum(rank[i] for i in dangling) / n
        base = (1 - damping) / n + spread
        new = [base] * n
        for target, sources in incoming.items():
            new[target] += damping * sum(rank[s] * w / out_weight[s] for s, w in sources)
        rank = new
    return {name: rank[i] for i, name in enumerate(names)}


def split_identifier(name: str) -> list[str]:
    """``parseHTTPResponse_v2`` -> ``["parse", "http", "response", "v", "2"]`` (lower case words, any script)."""
    words: list[str] = []
    cur = ""
    for i, ch in enumerate(name):
        if ch == "_" or not ch.isalnum():
            if cur:
                words.append(cur)
            cur = ""
            continue
        if cur:
            prev = cur[-1]
            nxt = name[i + 1] if i + 1 < len(name) else ""
            if (
                (ch.isupper() and (prev.islower() or prev.isdigit()))
                or (ch.isdigit() != prev.isdigit())
                or (ch.isupper() and prev.isupper() and nxt.islower())
            ):
                words.append(cur)
                cur = ""
        cur += ch
    if cur:
        words.append(cur)
    return [w.lower() for w in words]


_ASCII_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_TOKEN = re.compile(r"[^\W_][\w]*")


@lru_cache(maxsize=100_000)
def _token_words(token: str) -> str:
    parts = [w.lower() for w in _ASCII_WORDS.findall(token)] if token.isascii() else split_identifier(token)
    words = parts[:]
    if len(parts) > 2:  # MultiPartParser: "multipart" too, as a question writes the compound
        words += [a + b for a, b in pairwise(parts) if a.isalpha() and b.isalpha()]
    if len(parts) > 1:
        words.append(token.lower().replace("_", ""))
    return " ".join(words)


def words_of(text: str) -> str:
    """Text for the full-text index: each identifier's words, its adjacent pairs joined (``multi part parser`` ->
    ``multipart``, ``partparser``) and the identifier itself, lower case."""
    return " ".join(_token_words(t) for t in _TOKEN.findall(text))
