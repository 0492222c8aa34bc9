"""The pure core: events, plans, the patch vocabulary, ``RunState``, the fold and patch transactions.

Nothing here does I/O; times and ids arrive on the events. ``clock.py`` defines the one ``Clock``
protocol (and the real clock), which only the layers above take; the fold never reads it.
"""
