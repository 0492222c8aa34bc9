"""The event store on a PostgreSQL server (``pip install 'agentcore[postgres]'``): ``PostgresEventStore``,
its work queue with leases (``queue``), numbered migrations and the connection pool.
"""

from agentcore.storage.base import Lease
from agentcore.storage.postgres.queue import LeasedStore
from agentcore.storage.postgres.store import PostgresEventStore

__all__ = ("Lease", "LeasedStore", "PostgresEventStore")
