"""Tools: ``@tool`` declarations and their schemas, bounded payloads, the ``ToolRunner``, built-in
tools and the code-search toolkit (``tools.code``).
"""
