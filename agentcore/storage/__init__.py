"""Where runs are kept: the store protocols, the memory store, SQLite (``storage.sqlite``) and trace files.
"""
