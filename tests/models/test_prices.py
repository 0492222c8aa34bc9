"""Dollars per LLM call: genai-prices (offline), the caller's own prices, unknown never 0, the
``max_cost_usd`` budget, the ``llm_usage``/``llm_cost`` views and ``agentcore usage``."""

from __future__ import annotations

import json
import socket
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentcore.cli.commands import cli
from agentcore.core.event_codec import decode_event
from agentcore.core.events import LLMCalled, RunFinished, TokenUsage
from agentcore.errors import ConfigError
from agentcore.models.base import ChatResponse
from agentcore.models.prices import ModelPrice, known_price, parse_prices, price_of, pricer
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel, call, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import tool

USAGE = TokenUsage(prompt_tokens=1_000_000, completion_tokens=200_000, total_tokens=1_200_000)


@tool
def lookup(name: str) -> str:
    """Look a name up.

    Args:
        name: What to look up.
    """
    return f"{name}: found"


def test_genai_prices_prices_a_known_model_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("genai-prices tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    one = price_of("gpt-4o-mini", USAGE)
    assert one is not None and one > 0
    double = TokenUsage(prompt_tokens=2_000_000, completion_tokens=400_000, total_tokens=2_400_000)
    assert price_of("gpt-4o-mini", double) == pytest.approx(2 * one)
    assert price_of("openai:gpt-4o-mini", USAGE) == pytest.approx(one)  # provider prefix
    assert price_of("gpt-4o-mini", TokenUsage()) == 0  # known model, no tokens: a real 0


def test_an_unknown_model_has_no_price_and_user_prices_win() -> None:
    assert price_of("scripted", USAGE) is None and not known_price("scripted")
    mine = {"scripted": ModelPrice(input_mtok=2.0, output_mtok=10.0), "gpt-4o-mini": ModelPrice(0, 0)}
    assert price_of("scripted", USAGE, prices=mine) == pytest.approx(2.0 + 2.0)
    assert price_of("gpt-4o-mini", USAGE, prices=mine) == 0  # the caller's price beats genai-prices
    assert pricer({"scripted": {"input_mtok": 1, "output_mtok": 1}})("scripted", USAGE, None) == pytest.approx(1.2)


def test_a_pricer_looks_an_unknown_model_up_once_and_still_prices_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    import genai_prices

    looked_up: list[str] = []
    real = genai_prices.calc_price

    def counting(usage: Any, model_ref: str, **kwargs: Any) -> Any:
        looked_up.append(model_ref)
        return real(usage, model_ref, **kwargs)

    monkeypatch.setattr(genai_prices, "calc_price", counting)
    price = pricer()
    assert [price("scripted", USAGE, None) for _ in range(3)] == [None, None, None]
    assert looked_up == ["scripted"]  # unknown today: asked once
    known = [price("gpt-4o-mini", USAGE, None) for _ in range(2)]
    assert known[0] is not None and known[0] == known[1] > 0 and looked_up.count("gpt-4o-mini") == 2
    assert price("scripted", USAGE, datetime(2024, 6, 1, tzinfo=timezone.utc)) is None
    assert looked_up.count("scripted") == 2  # a dated call is looked up again


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"m": {"input_mtok": -1, "output_mtok": 1}}, "finite number >= 0"),
        ({"m": {"input_mtok": float("nan"), "output_mtok": 1}}, "finite number >= 0"),
        ({"m": {"input": 1}}, "must be a ModelPrice"),
        ({"": ModelPrice(1, 1)}, "non-empty strings"),
        (["m"], "must map model names"),
    ],
)
def test_bad_prices_are_refused(table: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_prices(table)


def looping_agent(store: SQLiteEventStore, **options: Any) -> tuple[Agent, FunctionChatModel]:
    usage = TokenUsage(prompt_tokens=400_000, completion_tokens=100_000, total_tokens=500_000)
    controller = FunctionChatModel(
        lambda request: ChatResponse(content=None, tool_calls=call("lookup", name="x").tool_calls, usage=usage),
        name="gpt-4o-mini",
    )
    processor = ScriptedChatModel([respond_json({"ops": []})] * 50, name="my-local-model")
    return Agent(controller, processor, tools=[lookup], store=store, max_steps=20, **options), controller


def test_each_call_records_its_cost_and_max_cost_usd_ends_the_run(tmp_path: Path) -> None:
    per_call = price_of("gpt-4o-mini", TokenUsage(prompt_tokens=400_000, completion_tokens=100_000))
    assert per_call is not None and per_call > 0
    with SQLiteEventStore(tmp_path / "runs.db") as store:
        agent, controller = looping_agent(
            store, prices={"my-local-model": ModelPrice(0.0, 0.0)}, max_cost_usd=2.5 * per_call
        )
        result = agent.run_sync("loop")
        assert result.status == "failed" and result.reason is not None and result.reason.startswith("budget: $")
        assert "max_cost_usd=" in result.reason
        assert len(controller.requests) == 3  # 3 calls pass 2.5x the price of one: no fourth turn
        calls = [e for e in store.read(result.run_id) if isinstance(e, LLMCalled)]
        assert [e.cost_usd for e in calls if e.role == "controller"] == pytest.approx([per_call] * 3)
        assert {e.cost_usd for e in calls if e.role == "processor"} == {0.0}
        assert result.state.cost_usd == pytest.approx(3 * per_call) and result.state.unpriced_calls == 0
        assert isinstance(list(store.read(result.run_id))[-1], RunFinished)
        run_id = result.run_id
    # the views read the recorded costs
    db = sqlite3.connect(tmp_path / "runs.db")
    rows = db.execute("SELECT role, cost_usd FROM llm_usage WHERE run_id = ? ORDER BY seq", [run_id]).fetchall()
    assert [r for r, _ in rows].count("controller") == 3 and all(c is not None for _, c in rows)
    run_cost = db.execute("SELECT SUM(cost_usd) FROM llm_cost WHERE run_id = ?", [run_id]).fetchone()[0]
    assert run_cost == pytest.approx(3 * per_call)
    db.close()


def test_unknown_prices_show_as_unknown_in_the_views_and_the_cli(tmp_path: Path) -> None:
    db_path = tmp_path / "runs.db"
    with SQLiteEventStore(db_path) as store:
        result = Agent(
            ScriptedChatModel([call("lookup", name="x"), say("done")], name="gpt-4o-mini"),
            ScriptedChatModel([respond_json({"ops": []})], name="my-local-model"),
            tools=[lookup],
            store=store,
        ).run_sync("t")
        assert result.state.unpriced_calls == 1
    db = sqlite3.connect(db_path)
    by_role = dict(db.execute("SELECT role, cost_usd FROM llm_cost WHERE run_id = ?", [result.run_id]).fetchall())
    assert by_role["processor"] is None  # unknown, not 0
    assert by_role["controller"] is not None and by_role["controller"] >= 0
    db.close()

    runner = CliRunner()
    out = runner.invoke(cli, ["usage", result.run_id, "--db", str(db_path), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["total"]["cost_usd"] is None and data["total"]["unpriced_calls"] == 1
    assert data["by_role"]["processor"]["cost_usd"] is None
    assert data["by_role"]["controller"]["cost_usd"] == pytest.approx(by_role["controller"])
    text = runner.invoke(cli, ["usage", result.run_id, "--db", str(db_path)]).stdout
    assert "unknown" in text and "$" in text

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"my-local-model": {"input_mtok": 1000000, "output_mtok": 0}}))
    again = json.loads(
        runner.invoke(cli, ["usage", result.run_id, "--db", str(db_path), "--prices", str(prices), "--json"]).stdout
    )
    processor_prompt = data["by_role"]["processor"]["prompt_tokens"]
    assert again["by_role"]["processor"]["cost_usd"] == pytest.approx(processor_prompt)
    assert again["total"]["unpriced_calls"] == 0
    prices.write_text("{not json")
    bad = runner.invoke(cli, ["usage", result.run_id, "--db", str(db_path), "--prices", str(prices)])
    assert bad.exit_code != 0 and "cannot read prices" in bad.output


def test_max_cost_usd_needs_a_known_price() -> None:
    with pytest.raises(ConfigError, match="model 'scripted' has no known price"):
        Agent(ScriptedChatModel([]), max_cost_usd=1.0)
    with pytest.raises(ConfigError, match="max_cost_usd must be None or a number of dollars > 0"):
        Agent(ScriptedChatModel([]), max_cost_usd=0)
    agent = Agent(ScriptedChatModel([]), prices={"scripted": ModelPrice(1, 1)}, max_cost_usd=1)
    assert agent.config()["max_cost_usd"] == 1.0 and agent.config()["prices"] == {
        "scripted": {"input_mtok": 1, "output_mtok": 1}
    }


def test_a_v1_llm_called_body_reads_with_an_unknown_cost() -> None:
    body = {
        "type": "llm_called", "v": 1, "run_id": "r", "seq": 2, "at": "2026-01-01T00:00:00Z", "role": "controller",
        "model": "gpt-4o-mini", "request_digest": "d",
    }  # fmt: skip
    event = decode_event(json.dumps(body))
    assert isinstance(event, LLMCalled) and event.v == 2 and event.cost_usd is None


BOGUS_USAGES = [
    TokenUsage(prompt_tokens=-100, completion_tokens=-5, total_tokens=-105),  # a server's negative counts
    TokenUsage(prompt_tokens=10**400, completion_tokens=1, total_tokens=10**400 + 1),  # no float holds its cost
]


@pytest.mark.parametrize("usage", BOGUS_USAGES, ids=["negative", "beyond-float"])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "mine"])
def test_token_counts_no_price_can_follow_have_no_price_and_never_raise(usage: TokenUsage, model: str) -> None:
    """A server may report any integers as usage; what cannot be a cost is an unknown price (None),
    never an exception, a negative or an infinite cost."""
    mine = {"mine": ModelPrice(input_mtok=2.0, output_mtok=10.0)}
    assert price_of(model, usage, prices=mine) is None
    assert pricer(mine)(model, usage, None) is None


@pytest.mark.parametrize("usage", BOGUS_USAGES, ids=["negative", "beyond-float"])
def test_a_run_whose_model_reports_bogus_usage_records_it_unpriced(usage: TokenUsage, tmp_path: Path) -> None:
    def answer(request: Any) -> ChatResponse:
        return ChatResponse(content="done", usage=usage, finish_reason="stop")

    model = FunctionChatModel(answer, name="gpt-4o-mini")
    with SQLiteEventStore(tmp_path / "runs.db") as store:
        result = Agent(model, tools=[lookup], store=store).run_sync("anything")
        calls = [e for e in store.read(result.run_id) if isinstance(e, LLMCalled)]
        stats = store.run_stats(result.run_id)  # what `agentcore runs` lists
    assert result.status == "succeeded" and result.reply == "done"
    assert [(c.usage, c.cost_usd) for c in calls] == [(usage, None)]
    assert result.state.unpriced_calls == 1
    assert (stats.events, stats.tokens) == (len(calls) + 3, usage.total_tokens)
    listed = CliRunner().invoke(cli, ["--db", str(tmp_path / "runs.db"), "runs", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["tokens"] for r in json.loads(listed.output)] == [usage.total_tokens]
