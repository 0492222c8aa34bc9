"""The work queue's one table (migration m010): run entries and step attempts in ``work``, read and
written through the ``queue`` and ``step_queue`` views, on a real server.

The upgrade test builds the m008 layout as an older agentcore left it (two tables, one queued run,
one leased run with plan steps in every state, one finished run) and checks that every lease,
token, claim count and step outcome survives, and that the leases keep fencing afterwards.
"""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from agentcore.core.events import UserMessaged
from agentcore.errors import ConfigError, LeaseLost, PlanError
from agentcore.storage.base import Lease, StepLease
from agentcore.storage.postgres.migrations import MIGRATION_NAMES, MIGRATIONS
from agentcore.storage.postgres.store import PostgresEventStore

M008 = MIGRATION_NAMES.index("m008_run_log") + 1


def message(run: str, seq: int) -> UserMessaged:
    return UserMessaged(run_id=run, seq=seq, at=datetime.now(timezone.utc), text=f"m{seq}")


def step_lease(step: str, *, token: int) -> StepLease:
    return StepLease(
        run_id="held", step_id=step, attempt=1, idempotency_key=f"held/{step}/1", token=token, owner="w2", spec={}, claims=1
    )


def relations(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name: kind for name, kind in rows}


def build_m008(url: str) -> None:
    """m001..m008 with a queue: 'waiting' queued, 'held' leased (token 3, steps a..d), 'over' done."""
    with psycopg.connect(url) as conn:
        for _, sql in MIGRATIONS[:M008]:
            conn.execute(sql)  # type: ignore[arg-type]
        values = ", ".join(f"({n}, '{name}', now())" for n, name in enumerate(MIGRATION_NAMES[:M008], start=1))
        conn.execute(f"CREATE VIEW agentcore_migrations (id, name, applied) AS VALUES {values}")  # type: ignore[arg-type]
        for run in ("waiting", "held", "over"):
            conn.execute("INSERT INTO runs (id, task, created) VALUES (%s, 'old', '2026-01-01T00:00:00+00:00')", (run,))
        conn.execute(
            "INSERT INTO queue (run_id, spec, submitted) VALUES ('waiting', '{\"kind\": \"w\"}', '2026-01-01T00:00:01Z')"
        )
        conn.execute(
            "INSERT INTO queue (run_id, state, spec, submitted, lease_owner, lease_token, lease_expires, claims) "
            "VALUES ('held', 'leased', '{\"kind\": \"h\"}', '2026-01-01T00:00:00Z', 'w1', 3, now() + interval '1 hour', 3)"
        )
        conn.execute(
            "INSERT INTO queue (run_id, state, spec, claims, finished) VALUES ('over', 'done', '{}', 1, now())"
        )
        steps = [
            ("a", 1, "queued", None, 0, None),
            ("b", 1, "leased", "w2", 5, None),
            ("c", 2, "done", None, 1, '{"ok": true}'),
            ("d", 1, "cancelled", None, 0, None),
        ]
        for step, attempt, state, owner, token, result in steps:
            conn.execute(
                "INSERT INTO step_queue (run_id, step_id, attempt, idempotency_key, state, lease_owner, lease_token, "
                "lease_expires, claims, result) VALUES ('held', %s, %s, %s, %s, %s, %s, "
                "CASE WHEN %s = 'leased' THEN now() + interval '1 hour' END, %s, %s)",
                (step, attempt, f"held/{step}/{attempt}", state, owner, token, state, token, result),
            )


def test_a_queue_of_the_m008_layout_is_moved_into_one_table_with_its_leases_and_steps(pg_url: str) -> None:
    build_m008(pg_url)
    held = Lease(run_id="held", token=3, owner="w1", spec={"kind": "h"}, claims=3)
    with PostgresEventStore(pg_url) as s:
        entries = {e["run_id"]: e for e in s.queue_entries()}
        assert [e["run_id"] for e in s.queue_entries()] == ["held", "waiting", "over"]  # oldest first, done last
        assert (entries["held"]["state"], entries["held"]["lease_owner"], entries["held"]["lease_token"]) == ("leased", "w1", 3)
        assert (entries["waiting"]["state"], entries["over"]["state"], entries["held"]["claims"]) == ("queued", "done", 3)
        assert [(e["step_id"], e["attempt"], e["state"]) for e in s.step_entries("held")] == [
            ("a", 1, "queued"), ("b", 1, "leased"), ("c", 2, "done"), ("d", 1, "cancelled"),
        ]  # fmt: skip
        assert s.step_result("held", "c", 2) == {"ok": True}
        with pytest.raises(LeaseLost, match="cancelled"):
            s.step_result("held", "d", 1)
        assert s.unfinished() == 4  # two runs, two step attempts
        # the old lease still fences: its token appends, a stale one is refused
        assert s.renew(held)
        assert s.leased(held).append("held", [message("held", 1)], 0) == 1
        with pytest.raises(LeaseLost):
            s.leased(Lease(run_id="held", token=2, owner="w0", spec={}, claims=2)).append("held", [message("held", 2)], 1)
        # the queued step of the leased run is claimed (its spec is the run's), the held one is not
        got = s.claim_step("w3", lease_s=60)
        assert got is not None and (got.step_id, got.attempt, got.token, got.spec) == ("a", 1, 1, {"kind": "h"})
        assert s.claim_step("w4") is None
        assert not s.finish_step(step_lease("b", token=4), {"late": True})
        assert s.finish_step(step_lease("b", token=5), {"ok": 1})
        # the queued run is claimed; the table keeps the done run's entry
        lease = s.claim("w5")
        assert lease is not None and (lease.run_id, lease.token, lease.spec) == ("waiting", 1, {"kind": "w"})
        assert s.claim("w6") is None
        assert s.release(held, done=True)
        assert [e["state"] for e in s.step_entries("held")] == ["cancelled", "done", "done", "cancelled"]
    assert relations(pg_url) | {"agentcore_migrations": "VIEW"} == {
        "runs": "BASE TABLE", "run_log": "BASE TABLE", "artifacts": "BASE TABLE", "work": "BASE TABLE",
        "queue": "VIEW", "step_queue": "VIEW", "events": "VIEW", "snapshots": "VIEW", "facts": "VIEW",
        "llm_usage": "VIEW", "llm_cost": "VIEW", "tool_calls": "VIEW", "agentcore_migrations": "VIEW",
    }  # fmt: skip
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM agentcore_migrations ORDER BY id")]
        kinds = conn.execute("SELECT step_id = '', count(*) FROM work GROUP BY 1 ORDER BY 1").fetchall()
    assert tuple(names) == MIGRATION_NAMES
    assert kinds == [(False, 4), (True, 3)]


def test_a_run_entry_and_a_step_attempt_cannot_be_mistaken_for_each_other(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as s:
        s.submit("t", run_id="r")
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO work (run_id, step_id, attempt) VALUES ('r', 's', 1)")  # a step without its key
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO work (run_id, attempt, spec) VALUES ('r', 1, '{}')")  # a run entry with an attempt
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO queue (run_id, spec) VALUES ('nobody', '{}')")


@pytest.mark.parametrize(
    ("steps", "says"),
    [
        ([{"id": "a", "after": ["b"]}, {"id": "b", "after": ["a"]}], "cycle: a -> b -> a"),
        ([{"id": "a", "after": ["zzz"]}], "unknown step 'zzz'"),
        ([{"id": "a"}, {"id": "a"}], "duplicate step id 'a'"),
        ("not a list", "steps"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_by_submit_and_nothing_is_queued(
    pg_url: str, steps: object, says: str
) -> None:
    with PostgresEventStore(pg_url) as store:
        with pytest.raises((PlanError, ConfigError), match=says):
            store.submit("a plan", spec={"plan": {"steps": steps}})
        assert store.runs() == [] and store.queue_entries() == [] and store.unfinished() == 0
        good = store.submit("a plan", spec={"plan": {"steps": [{"id": "a"}, {"id": "b", "after": ["a"]}]}})
        assert [r.id for r in store.runs()] == [good]



def test_submit_refuses_a_task_no_database_can_store_and_queues_nothing(pg_url: str) -> None:
    """A lone surrogate (what Python makes of bytes that are not UTF-8) in the task is ``ConfigError``
    naming where it is, before anything is written (it was ``UnicodeEncodeError``)."""
    with PostgresEventStore(pg_url) as store:
        with pytest.raises(ConfigError, match=r"the task is not valid Unicode text \(a lone surrogate U\+DC80 at index 2"):
            store.submit("ab\udc80", spec={"kind": "agent"})
        assert store.runs() == [] and store.queue_entries() == []


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"kind": "ask", "repo": "src\x00x"}, r"the spec\['repo'\] holds a NUL character \(U\+0000\) at index 3"),
        ({"kind": "ask", "q\udc80": 1}, r"the key of spec is not valid Unicode text \(a lone surrogate U\+DC80 at index 1"),
        (
            {"kind": "ask", "tools": ["grep", {"args": ["-n", "x\ud800"]}]},
            r"the spec\['tools'\]\[1\]\['args'\]\[1\] is not valid Unicode text \(a lone surrogate U\+D800 at index 1",
        ),
    ],
)
def test_submit_refuses_a_spec_string_no_database_can_store_and_queues_nothing(
    pg_url: str, spec: dict[str, object], says: str
) -> None:
    """Both were queued (PostgreSQL's JSON type keeps ``\\u0000`` and ``\\udc80`` as written), for a
    worker to meet them (``->>`` refuses an object holding ``\\u0000``; no UTF-8 encoder writes a lone
    surrogate). They are the caller's input: ``ConfigError`` naming where in the spec, nothing written."""
    with PostgresEventStore(pg_url) as store:
        with pytest.raises(ConfigError, match=says):
            store.submit("t", spec=spec)
        assert store.runs() == [] and store.queue_entries() == [] and store.unfinished() == 0
        good = store.submit("t", spec={"kind": "ask", "repo": "src\\x00 as six characters, \u00e9"})
        assert [r.id for r in store.runs()] == [good]
