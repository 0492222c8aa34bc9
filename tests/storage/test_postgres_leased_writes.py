"""Writes under a work-queue lease on a real server: the fenced append that reads the lease and locks
the run's row in one statement, and the commits that do not wait for the WAL flush (artifacts put
under a lease, lease renewals) while every other commit of the session still does."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agentcore.core.events import UserMessaged
from agentcore.core.values import sha256_id
from agentcore.errors import LeaseLost
from agentcore.storage.postgres.artifacts import _PUT_FOR_EVENTS
from agentcore.storage.postgres.store import PostgresEventStore


def message(run: str, seq: int) -> UserMessaged:
    return UserMessaged(run_id=run, seq=seq, at=datetime.now(timezone.utc), text=f"m{seq}")


def synchronous_commit(store: PostgresEventStore) -> str:
    with store._db.connection() as conn:  # max_connections=1: the connection every call above used
        row = conn.execute("SHOW synchronous_commit").fetchone()
    assert row is not None
    return str(row[0])


def test_a_leased_append_is_refused_once_the_lease_ended_or_moved_and_writes_nothing(pg_url: str) -> None:
    with PostgresEventStore(pg_url, max_connections=1) as store:
        run = store.submit("t", spec={})
        lease = store.claim("A", lease_s=30)
        assert lease is not None
        assert store.leased(lease).append(run, [message(run, 1), message(run, 2)], 0) == 2
        assert store.leased(lease).append(run, [message(run, 3)], 2) == 3
        assert store.release(lease, done=True) is True
        with pytest.raises(LeaseLost, match=r"token \d+, done"):
            store.leased(lease).append(run, [message(run, 4)], 3)
        other = store.submit("u", spec={})
        assert store.leased(lease).append(other, [message(other, 1)], 0) == 1  # another run: not fenced
        assert (store.last_seq(run), [e.seq for e in store.read(run)]) == (3, [1, 2, 3])


def test_artifacts_put_under_a_lease_and_renewals_commit_lazily_and_the_session_stays_synchronous(
    pg_url: str,
) -> None:
    with PostgresEventStore(pg_url, max_connections=1) as store:
        run = store.submit("t", spec={})
        lease = store.claim("A", lease_s=30)
        assert lease is not None
        leased = store.leased(lease)
        ref = leased.artifacts.put(b"tool output", "text/plain")
        assert leased.artifacts.put(b"tool output", "application/json").media_type == "text/plain"  # stored once
        assert store.renew(lease, lease_s=30) is True
        assert synchronous_commit(store) == "on"  # set for the put's and the renewal's transaction only
        assert leased.append(run, [message(run, 1)], 0) == 1
        with store._db.transaction("check") as conn:  # the put's statement turns it off for its transaction
            conn.execute(_PUT_FOR_EVENTS, (sha256_id(b"x"), "text/plain", 1, b"x", sha256_id(b"x")))
            row = conn.execute("SHOW synchronous_commit").fetchone()
            assert row is not None and row[0] == "off"
        assert synchronous_commit(store) == "on"
        assert store.artifacts.put(b"plain", "text/plain").size == 5
        assert synchronous_commit(store) == "on"
    with PostgresEventStore(pg_url) as again:
        assert again.artifacts.get(ref.id) == b"tool output"
        assert again.artifacts.info(ref.id).media_type == "text/plain"
        assert [e.seq for e in again.read(run)] == [1]
