"""The package's version, in a module of its own so that ``agentcore --version`` reads it without
loading anything else (``agentcore.__version__`` is this value; the package metadata's version is
tested equal to it)."""

__version__ = "0.1.0"
