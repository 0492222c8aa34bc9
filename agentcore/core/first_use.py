"""Bind a hot-path callable on its first call.

Models are built with ``defer_build`` so that commands which never validate (``agentcore runs``)
never pay for pydantic's validators. Hot paths (the fold, the event decoder) still want to call the
built validator directly, without a wrapper on every call. ``bind_on_first_use`` gives them a
stand-in that, on its first call, builds the real callable, stores it in the module's namespace
under the same name (so every later call goes straight to it) and calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ("bind_on_first_use",)

A = TypeVar("A")
R = TypeVar("R")


def bind_on_first_use(namespace: dict[str, Any], name: str, build: Callable[[], Callable[[A], R]]) -> Callable[[A], R]:
    """Return a stand-in for ``namespace[name]`` that builds and binds the real callable once.

    ``namespace`` is the calling module's ``globals()``; ``name`` the global the stand-in is
    assigned to; ``build`` returns the real one-argument callable (for example
    ``lambda: Model.__pydantic_validator__.validate_python``). Code that imported the stand-in by
    value keeps working: it builds on every call instead of once.
    """

    def first(arg: A) -> R:
        real = build()
        namespace[name] = real
        return real(arg)

    first.__qualname__ = first.__name__ = f"{name}_on_first_use"
    return first
