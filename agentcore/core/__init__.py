"""The pure core: events, plans, the patch vocabulary, ``RunState``, the fold and patch transactions.

Nothing here does I/O or reads a clock; times and ids arrive on the events.
"""
