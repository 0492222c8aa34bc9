"""find_references with a class scope (``Class.method``): only the uses the index can tie to that class
(or a subclass that inherits the method), the ones it cannot tell listed apart, on small real trees in
Python, JavaScript/TypeScript and Go."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.tools.code import CodeTools
from agentcore.tools.code.index_models import ReferenceResult

TREE = {
    "shop/cart.py": (
        "class Cart:\n"  # 1
        "    def total(self):\n"  # 2
        "        return 1\n"  # 3
        "\n"  # 4
        "    def show(self):\n"  # 5
        "        return self.total()\n"  # 6
        "\n"  # 7
        "\n"  # 8
        "class Invoice:\n"  # 9
        "    def total(self):\n"  # 10
        "        return 2\n"  # 11
        "\n"  # 12
        "    def show(self):\n"  # 13
        "        return self.total()\n"  # 14
        "\n"  # 15
        "\n"  # 16
        "class BigCart(Cart):\n"  # 17
        "    def big(self):\n"  # 18
        "        return self.total() * 2\n"  # 19
        "\n"  # 20
        "\n"  # 21
        "class OwnTotal(Cart):\n"  # 22
        "    def total(self):\n"  # 23
        "        return self.total_of()\n"  # 24
        "\n"  # 25
        "    def again(self):\n"  # 26
        "        return self.total()\n"  # 27
    ),
    "shop/use.py": (
        "from shop.cart import Cart, Invoice\n"  # 1
        "\n"  # 2
        "\n"  # 3
        "def checkout(cart: Cart, thing):\n"  # 4
        "    invoice = Invoice()\n"  # 5
        "    a = cart.total()\n"  # 6
        "    b = invoice.total()\n"  # 7
        "    c = thing.total()\n"  # 8
        "    return Cart.total(cart) + a + b + c\n"  # 9
        "\n"  # 10
        "\n"  # 11
        "def fresh():\n"  # 12
        "    made = Cart()\n"  # 13
        "    return made.total()\n"  # 14
    ),
    "web/client.ts": (
        "export class Client {\n"  # 1
        "  send(x: string) { return x; }\n"  # 2
        "  ping() { return this.send('ping'); }\n"  # 3
        "}\n"  # 4
        "export class Other {\n"  # 5
        "  send(x: string) { return x; }\n"  # 6
        "  go() { return this.send('go'); }\n"  # 7
        "}\n"  # 8
        "const shared = new Client();\n"  # 9
        "export function use(o: any) { shared.send('a'); return o.send('b'); }\n"  # 10
    ),
    "srv/server.go": (
        "package srv\n"  # 1
        "\n"  # 2
        "type Server struct{}\n"  # 3
        "\n"  # 4
        "func (s *Server) Handle() {}\n"  # 5
        "\n"  # 6
        "func (s *Server) Serve() { s.Handle() }\n"  # 7
        "\n"  # 8
        "type Proxy struct{}\n"  # 9
        "\n"  # 10
        "func (p Proxy) Handle() {}\n"  # 11
        "\n"  # 12
        "func (p Proxy) Run() { p.Handle() }\n"  # 13
    ),
}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> CodeTools:
    root = tmp_path_factory.mktemp("refs")
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return CodeTools(root, cache_dir=tmp_path_factory.mktemp("refs-cache"))


def sites(result: ReferenceResult, group: str = "calls") -> set[str]:
    return {f"{s.path}:{s.line}" for s in getattr(result, group)}


def test_a_class_scope_keeps_only_the_uses_tied_to_that_class(tools: CodeTools) -> None:
    found = tools.find_references("Cart.total")
    assert found.owner == "Cart" and found.owner_is_class
    assert sites(found) == {
        "shop/cart.py:6",  # self.total() inside Cart
        "shop/cart.py:19",  # self.total() inside BigCart(Cart), which inherits total
        "shop/use.py:6",  # cart: Cart
        "shop/use.py:9",  # Cart.total(cart)
        "shop/use.py:14",  # made = Cart()
    }
    assert sites(found, "unresolved") == {"shop/use.py:8"}  # thing: no type
    assert found.other_owners == 3  # Invoice's self.total, invoice = Invoice(), OwnTotal's own total
    summary = found.summary()
    assert "resolve to Cart or a subclass" in summary and "unresolved (1):" in summary
    assert "3 uses of that name belong to other classes or modules" in summary


def test_a_subclass_that_overrides_the_method_is_its_own_owner(tools: CodeTools) -> None:
    assert sites(tools.find_references("OwnTotal.total")) == {"shop/cart.py:27"}
    assert sites(tools.find_references("Invoice.total")) == {"shop/cart.py:14", "shop/use.py:7"}


def test_without_a_scope_every_use_is_listed(tools: CodeTools) -> None:
    found = tools.find_references("total")
    assert found.owner is None and found.unresolved == ()
    assert sites(found) == {"shop/cart.py:6", "shop/cart.py:14", "shop/cart.py:19", "shop/cart.py:27",
                            "shop/use.py:6", "shop/use.py:7", "shop/use.py:8", "shop/use.py:9", "shop/use.py:14"}  # fmt: skip


def test_this_and_module_level_new_in_typescript(tools: CodeTools) -> None:
    found = tools.find_references("Client.send")
    assert sites(found) == {"web/client.ts:3", "web/client.ts:10"}  # this.send inside Client; shared = new Client()
    assert sites(found, "unresolved") == {"web/client.ts:10"}  # o.send on the same line: o has no known class
    assert sites(tools.find_references("Other.send")) == {"web/client.ts:7"}


def test_go_receivers(tools: CodeTools) -> None:
    assert sites(tools.find_references("Server.Handle")) == {"srv/server.go:7"}
    assert sites(tools.find_references("Proxy.Handle")) == {"srv/server.go:13"}


def test_the_index_says_when_it_cannot_tell(tools: CodeTools) -> None:
    found = tools.find_references("Cart.total")
    summary = found.summary()
    assert "whose receiver's class the index cannot tell" in summary
    assert "some may be Cart's, others belong to other classes" in summary  # Invoice defines total too
    only = tools.find_references("Server.Serve")
    assert only.only_definer


def test_a_module_scope(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/codec.py").write_text("def dumps(x):\n    return x\n", encoding="utf-8")
    (tmp_path / "app.py").write_text(
        "import pkg.codec as codec\nfrom pkg.codec import dumps\nimport pickle\n\n"
        "codec.dumps(1)\ndumps(2)\npickle.dumps(3)\n",
        encoding="utf-8",
    )
    found = CodeTools(tmp_path, cache_dir=tmp_path.parent / "cache-mod").find_references("codec.dumps")
    assert sites(found) == {"app.py:5", "app.py:6"}
    assert sites(found, "imports") == {"app.py:2"}
    assert found.other_owners == 1 and not found.owner_is_class


def test_the_offline_model_answers_a_class_scoped_usage_question(tools: CodeTools) -> None:
    from agentcore.models.offline import OfflineCodeModel
    from agentcore.runtime.agent import Agent
    from agentcore.storage.memory import MemoryEventStore
    from agentcore.tools.code.agent_tools import code_tools

    model = OfflineCodeModel()
    agent = Agent(model, model, code_tools(tools.root.path, cache_dir=tools.cache_dir), MemoryEventStore())
    reply = agent.run_sync("Who calls Cart.total?").reply or ""
    assert reply.startswith("Cart.total is defined at shop/cart.py:2"), reply
    uses = reply.split("\n", 1)[1]
    assert "resolve to Cart or a subclass" in uses and "shop/cart.py:6" in uses and "shop/cart.py:14" not in uses
    assert "the index cannot tell 1 time at shop/use.py:8" in uses
    assert "3 uses of that name belong to other classes or modules (left out)" in uses
