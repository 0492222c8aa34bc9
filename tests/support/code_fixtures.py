"""Fixture trees for the code tools, built at test time: a Python repo, a Go repo and a tree of traps.

The ``*_DEFINITIONS`` tables give the exact ``(path, line)`` of each definition the repos hold, for tests
that look symbols up.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PYTHON_DEFINITIONS = {
    "TAX_RATE": ("shop/cart.py", 5),
    "Cart": ("shop/cart.py", 9),
    "add_item": ("shop/cart.py", 14),
    "apply_tax": ("shop/cart.py", 22),
    "DEFAULT_CURRENCY": ("shop/pricing.py", 3),
    "PriceError": ("shop/pricing.py", 6),
    "fetch_rates": ("shop/pricing.py", 10),
}
GO_DEFINITIONS = {
    "ClientError": ("client/errors.go", 7),
    "Error": ("client/errors.go", 12),
    "ErrNotFound": ("client/errors.go", 16),
    "DefaultTimeout": ("client/client.go", 9),
    "Doer": ("client/client.go", 12),
    "Client": ("client/client.go", 17),
    "NewClient": ("client/client.go", 22),
    "Get": ("client/client.go", 27),
}

BIG_FILE_MARKER = "BIG_FILE_END_MARKER"
"""Appears once, on the last line of ``big.txt`` in the trap tree."""
TRAP_MARKER = "TRAP_MARKER"
"""Appears in every trap file; a search must find it only where ``TRAP_MARKER_VISIBLE`` says."""
TRAP_MARKER_VISIBLE = {
    ("notes.txt", 1),
    ("src/app.py", 2),
    ("dir with space/naïve ü file.txt", 1),
    ("latin1.txt", 1),
    ("pair_a.txt", 1),
    ("pair_b.txt", 1),
}


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            text = textwrap.dedent(content).lstrip("\n")
            if target.suffix == ".go":  # gofmt indents with tabs; the sources above use 4 spaces
                text = re.sub(r"(?m)^(?:    )+", lambda m: "\t" * (len(m.group(0)) // 4), text)
            target.write_text(text, encoding="utf-8")


def make_python_repo(path: str | Path) -> Path:
    """Write a small Python project ``shop`` (with a .gitignore'd ``build/`` copy) under ``path``."""
    root = Path(path)
    _write(
        root,
        {
            ".gitignore": "build/\n*.log\n",
            "README.md": "# shop\n\nA Cart that applies TAX_RATE.\n",
            "shop/__init__.py": '''
                """A tiny shop used as a code-search fixture."""
                from shop.cart import Cart

                __all__ = ["Cart"]
            ''',
            "shop/cart.py": '''
                """Shopping carts."""

                from dataclasses import dataclass, field

                TAX_RATE = 0.2


                @dataclass
                class Cart:
                    """A cart of items."""

                    items: dict[str, int] = field(default_factory=dict)

                    def add_item(self, sku: str, quantity: int = 1) -> None:
                        self.items[sku] = self.items.get(sku, 0) + quantity

                    def total(self, prices: dict[str, float]) -> float:
                        subtotal = sum(prices[sku] * n for sku, n in self.items.items())
                        return apply_tax(subtotal)


                def apply_tax(amount: float) -> float:
                    return amount * (1 + TAX_RATE)
            ''',
            "shop/pricing.py": '''
                """Prices and currencies."""

                DEFAULT_CURRENCY: str = "EUR"


                class PriceError(Exception):
                    """A price could not be found."""


                async def fetch_rates(currency: str = DEFAULT_CURRENCY) -> dict[str, float]:
                    if currency != DEFAULT_CURRENCY:
                        raise PriceError(currency)
                    return {"EUR": 1.0}
            ''',
            "tests/test_cart.py": """
                from shop.cart import Cart

                # the class Cart is defined in shop/cart.py
                def test_add_item():
                    cart = Cart()
                    cart.add_item("apple")
                    assert cart.items == {"apple": 1}
            """,
            "build/cart.py": "class Cart:  # stale build output, ignored\n    pass\n",
            "debug.log": "Cart debug output, ignored\n",
        },
    )
    return root


def make_go_repo(path: str | Path) -> Path:
    """Write a small Go module ``example.com/fetcher`` under ``path``."""
    root = Path(path)
    _write(
        root,
        {
            "go.mod": "module example.com/fetcher\n\ngo 1.21\n",
            "client/errors.go": """
                package client

                import "fmt"

                // ClientError is returned when the server answers with a 4xx status.
                // A ClientError is never retried.
                type ClientError struct {
                    StatusCode int
                    Body       string
                }

                func (e *ClientError) Error() string {
                    return fmt.Sprintf("client error %d: %s", e.StatusCode, e.Body)
                }

                var ErrNotFound = &ClientError{StatusCode: 404}
            """,
            "client/client.go": """
                package client

                import (
                    "io"
                    "net/http"
                    "time"
                )

                const DefaultTimeout = 30 * time.Second

                // Doer sends HTTP requests.
                type Doer interface {
                    Do(req *http.Request) (*http.Response, error)
                }

                // Client fetches documents.
                type Client struct {
                    http Doer
                }

                // NewClient returns a Client that sends requests with d.
                func NewClient(d Doer) *Client {
                    return &Client{http: d}
                }

                // Get fetches url; a 4xx answer gives a *ClientError.
                func (c *Client) Get(url string) ([]byte, error) {
                    req, err := http.NewRequest(http.MethodGet, url, nil)
                    if err != nil {
                        return nil, err
                    }
                    resp, err := c.http.Do(req)
                    if err != nil {
                        return nil, err
                    }
                    defer resp.Body.Close()
                    if resp.StatusCode >= 400 && resp.StatusCode < 500 {
                        return nil, &ClientError{StatusCode: resp.StatusCode}
                    }
                    return io.ReadAll(resp.Body)
                }
            """,
            "client/client_test.go": """
                package client

                import "testing"

                func TestClientErrorIsError(t *testing.T) {
                    var _ error = (*ClientError)(nil)
                }
            """,
            "cmd/fetch/main.go": """
                package main

                import (
                    "fmt"

                    "example.com/fetcher/client"
                )

                func main() {
                    fmt.Println(client.NewClient(nil) != nil)
                }
            """,
        },
    )
    return root


@dataclass(frozen=True)
class TrapTree:
    """Where ``make_trap_tree`` put things."""

    root: Path
    """The code root."""
    outside: Path
    """A sibling directory of the root holding files that must never be read."""
    big_lines: int
    """Lines in ``root/big.txt``; the last one holds ``BIG_FILE_MARKER``."""


def make_trap_tree(path: str | Path, big_file_bytes: int = 20 * 1024 * 1024) -> TrapTree:
    """Build ``path/root`` full of traps for confinement and search, and ``path/outside`` next to it.

    In the root: ``..``-free links to ``/etc`` and to a file outside, a link inside that is fine, a hard
    link to a file outside and a pair of hard links inside, a binary file, a ``big_file_bytes`` text
    file, a Latin-1 file, a name with spaces and non-ASCII letters, a .gitignore'd file and directory,
    and a hidden directory.
    """
    base = Path(path)
    root, outside = base / "root", base / "outside"
    _write(
        outside,
        {
            "secret.txt": f"{TRAP_MARKER} OUTSIDE secret, never to be read\n",
            "hard.txt": f"{TRAP_MARKER} OUTSIDE hard-linked secret\n",
        },
    )
    _write(
        root,
        {
            ".gitignore": "ignored.txt\nbuild/\n",
            "ignored.txt": f"{TRAP_MARKER} in a .gitignore'd file\n",
            "build/out.txt": f"{TRAP_MARKER} in a .gitignore'd directory\n",
            ".hidden/notes.txt": f"{TRAP_MARKER} in a hidden directory\n",
            "notes.txt": f"{TRAP_MARKER} plain notes\n-v is a flag, not an option of the search\n",
            "src/app.py": f"def main():\n    print('{TRAP_MARKER} app')\n",
            "dir with space/naïve ü file.txt": f"{TRAP_MARKER} unicode ✓\n",
            "latin1.txt": f"caf\xe9 {TRAP_MARKER} latin-1\n".encode("latin-1"),
            "image.bin": b"\x89PNG\r\n\x1a\n\0\0\0" + f"{TRAP_MARKER}".encode() + b"\0" * 64,
            "pair_a.txt": f"{TRAP_MARKER} hard-linked inside the root\n",
        },
    )
    os.symlink("/etc", root / "link_etc")
    os.symlink(outside / "secret.txt", root / "link_secret.txt")
    os.symlink("src/app.py", root / "link_ok.py")
    os.link(outside / "hard.txt", root / "hard_secret.txt")
    os.link(root / "pair_a.txt", root / "pair_b.txt")
    filler = b"filler line of text for the big file\n"
    count = max(1, -(-big_file_bytes // len(filler)))
    with open(root / "big.txt", "wb") as f:
        f.write(filler * count)
        f.write(f"the end: {BIG_FILE_MARKER}\n".encode())
    return TrapTree(root=root, outside=outside, big_lines=count + 1)
