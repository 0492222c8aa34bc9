"""Chat models: the ``ChatModel`` protocol and its value types, the OpenAI adapter (the only place
that imports ``openai``), the offline code-search model and scripted models for tests.
"""
