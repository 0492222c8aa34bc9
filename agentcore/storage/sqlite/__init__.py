"""The SQLite event store: the shared connection, events and snapshots, artifacts and migrations."""
