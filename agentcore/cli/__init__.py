"""The ``agentcore`` command (click); the only subpackage that imports click and rich.

The commands load on first use: ``agentcore --version`` prints what click's version option prints
(the package metadata's version, which equals ``agentcore.__version__``: tested) from
``__version__``, without importing the commands (nor pydantic, the store, the run loop, or
``importlib.metadata``, which alone costs about as much as the interpreter's start).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcore.cli.commands import cli

__all__ = ("cli", "main")


def main() -> None:
    """Entry point of the ``agentcore`` script (and of ``python -m agentcore``)."""
    if sys.argv[1:] == ["--version"]:  # what click's version option prints, without loading the commands
        from agentcore.version import __version__

        print(f"agentcore, version {__version__}")
        return
    from agentcore.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "cli":
        from agentcore.cli.commands import cli

        return cli
    raise AttributeError(f"module 'agentcore.cli' has no attribute {name!r}")
