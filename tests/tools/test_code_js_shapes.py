"""JS/TS definitions that have no `function NAME` of their own: functions in object literals and
anonymous default exports (named after their file), on a small real tree."""

from __future__ import annotations

import pytest

from agentcore.tools.code import CodeTools
from agentcore.tools.code.extract import default_export_name

TREE = {
    "src/api/client.js": (
        "/** The HTTP client. */\n"
        "export const api = {\n"
        "  /** Fetch one resource. */\n"
        "  get(url) { return fetch(url); },\n"
        "  post: function (url, body) { return fetch(url, { method: 'POST', body }); },\n"
        "  put: (url, body) => fetch(url, { method: 'PUT', body }),\n"
        "  'delete': async (url) => fetch(url, { method: 'DELETE' }),\n"
        "  retries: 3,\n"
        "  admin: { purge() { return api.post('/purge'); } },\n"
        "};\n"
    ),
    "src/api/users.js": "export default function () {\n  return api.get('/users');\n}\n",
    "src/api/orders.js": "export default function () {\n  return api.get('/users');\n}\n",
    "src/date-picker.tsx": "export default class {\n  render() { return 1; }\n}\n",
    "src/widgets/index.ts": "export default () => 42;\n",
    "src/routes.ts": "export default {\n  home() { return '/'; },\n  about: () => '/about',\n};\n",
    "lib/store.js": "module.exports = {\n  load() { return 1; },\n  save: function (x) { return x; },\n};\n",
    "lib/handler.js": "module.exports = function (req, res) { res.end(); };\n",
    "lib/named.js": "export default function named() {}\n",
}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> CodeTools:
    root = tmp_path_factory.mktemp("js-shapes")
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return CodeTools(root, cache_dir=tmp_path_factory.mktemp("js-shapes-cache"))


def first(tools: CodeTools, symbol: str) -> tuple[str, str, str | None, str, int]:
    found = tools.find_definition(symbol).definitions
    assert found, f"no definition of {symbol}"
    p = found[0]
    return p.kind, p.name, p.container, p.path, p.line


@pytest.mark.parametrize(
    ("symbol", "kind", "container", "line"),
    [
        ("api.get", "method", "api", 4),  # shorthand method
        ("api.post", "method", "api", 5),  # key: function () {}
        ("api.put", "method", "api", 6),  # key: () => ...
        ("api.delete", "method", "api", 7),  # a quoted key
        ("admin.purge", "method", "admin", 9),  # one object down
    ],
)
def test_object_literal_functions_are_methods_of_the_object(
    tools: CodeTools, symbol: str, kind: str, container: str, line: int
) -> None:
    assert first(tools, symbol) == (kind, symbol.split(".")[1], container, "src/api/client.js", line)


def test_object_literal_values_that_are_not_functions_are_not_methods(tools: CodeTools) -> None:
    assert tools.find_definition("retries").definitions == ()
    outline = tools.outline("src/api/client.js")
    assert [(e.name, e.kind, e.container) for e in outline.entries] == [
        ("api", "constant", None), ("get", "method", "api"), ("post", "method", "api"), ("put", "method", "api"),
        ("delete", "method", "api"), ("purge", "method", "admin"),
    ]  # fmt: skip
    assert "Fetch one resource" in tools.find_definition("api.get").definitions[0].doc


@pytest.mark.parametrize(
    ("symbol", "kind", "path"),
    [
        ("users", "function", "src/api/users.js"),  # export default function () {}
        ("orders", "function", "src/api/orders.js"),  # same bytes, another file: its own name
        ("datePicker", "class", "src/date-picker.tsx"),  # export default class {}
        ("widgets", "function", "src/widgets/index.ts"),  # export default () => ..., in index.ts
        ("routes", "constant", "src/routes.ts"),  # export default { ... }
        ("handler", "function", "lib/handler.js"),  # module.exports = function () {}
        ("named", "function", "lib/named.js"),  # a named default export keeps its own name
    ],
)
def test_anonymous_default_exports_are_named_after_their_file(tools: CodeTools, symbol: str, kind: str, path: str) -> None:
    assert first(tools, symbol) == (kind, symbol, None, path, 1)


def test_members_of_default_exports_and_module_exports(tools: CodeTools) -> None:
    assert first(tools, "datePicker.render") == ("method", "render", "datePicker", "src/date-picker.tsx", 2)
    assert first(tools, "routes.home") == ("method", "home", "routes", "src/routes.ts", 2)
    assert first(tools, "routes.about") == ("method", "about", "routes", "src/routes.ts", 3)
    assert first(tools, "load") == ("function", "load", None, "lib/store.js", 2)
    assert first(tools, "save") == ("function", "save", None, "lib/store.js", 3)


def test_a_renamed_file_renames_its_default_export(tools: CodeTools) -> None:
    root = tools.root.path
    (root / "src/api/users.js").rename(root / "src/api/people.js")
    try:
        assert first(tools, "people") == ("function", "people", None, "src/api/people.js", 1)
        assert tools.find_definition("users").definitions == ()
    finally:
        (root / "src/api/people.js").rename(root / "src/api/users.js")


@pytest.mark.parametrize(
    ("rel", "name"),
    [("a/users.js", "users"), ("a/index.ts", "a"), ("date-picker.tsx", "datePicker"), ("x.test.js", "x"),
     ("index.js", "index")],
)  # fmt: skip
def test_default_export_name(rel: str, name: str) -> None:
    assert default_export_name(rel) == name
