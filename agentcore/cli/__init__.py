"""The ``agentcore`` command (click); the only subpackage that imports click and rich."""

from agentcore.cli.commands import cli, main

__all__ = ("cli", "main")
