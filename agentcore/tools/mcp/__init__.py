"""MCP (Model Context Protocol): servers' tools as agentcore tools (``mcp_tools``) and the code-search
tools as an MCP server (``agentcore mcp-serve``). Needs the ``mcp`` extra: ``pip install 'agentcore[mcp]'``.
"""

from agentcore.tools.mcp.client import IDEMPOTENCY_META_KEY, MCPConnection, MCPTool, mcp_tools

__all__ = ("IDEMPOTENCY_META_KEY", "MCPConnection", "MCPTool", "mcp_tools")
