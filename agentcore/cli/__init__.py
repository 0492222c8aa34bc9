"""The ``agentcore`` command (click); the only subpackage that imports click and rich.

The commands load on first use: ``agentcore --version`` answers from the package metadata, as
click's version option does, without importing them (nor pydantic, the store or the run loop).
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
        from importlib.metadata import version

        print(f"agentcore, version {version('agentcore')}")
        return
    from agentcore.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    if name == "cli":
        from agentcore.cli.commands import cli

        return cli
    raise AttributeError(f"module 'agentcore.cli' has no attribute {name!r}")
