"""A secret that is also JSON syntax (a proxy password of digits) is redacted from the strings of an
event, never from its JSON syntax; a value shorter than ``MIN_SECRET_CHARS`` (``null``) is not a
secret at all.

Before, ``RunLog`` replaced secrets in the event's JSON text: with the password ``null``,
``"reason":null`` became ``"reason":[redacted]``, which no event parses, and the run died at its
first event; a password ``1234`` damaged ``"prompt_tokens":12345``.
"""

from __future__ import annotations

from pathlib import Path

from agentcore.core.text import MIN_SECRET_CHARS
from agentcore.core.values import redacted_strings
from agentcore.models.openai import OpenAIChatModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_processor
from tests.support.openai_server import OpenAIServer, text


def test_a_password_that_is_a_json_word_leaves_the_run_whole(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        base = server.base_url.replace("http://", "http://proxyuser:null@")
        model = OpenAIChatModel("m", base_url=base, api_key="sk-test-0123456789")
        server.enqueue(text("null, it says null"))
        with SQLiteEventStore(tmp_path / "runs.db") as store:
            result = Agent(model, demo_processor(), [], store).run_sync("say null")
            events = list(store.read(result.run_id))
    assert result.status == "succeeded", result.reason
    assert len("null") < MIN_SECRET_CHARS  # a word, not a secret: answers keep it
    assert result.reply == "null, it says null"
    assert events[0].task == "say null"  # type: ignore[union-attr]


def test_a_password_of_digits_leaves_numbers_alone(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        base = server.base_url.replace("http://", "http://proxyuser:12345678@")
        model = OpenAIChatModel("m", base_url=base, api_key="sk-test-0123456789")
        usage = {"prompt_tokens": 123456789, "completion_tokens": 1, "total_tokens": 123456790}
        server.enqueue(text("the code is 12345678", usage=usage))
        with SQLiteEventStore(tmp_path / "runs.db") as store:
            result = Agent(model, demo_processor(), [], store).run_sync("count")
            recorded = [e.usage for e in store.read(result.run_id) if e.type == "llm_called"]
    assert result.status == "succeeded", result.reason
    assert recorded[0].prompt_tokens == 123456789  # the number holds the secret's digits and is kept
    assert result.reply == "the code is [redacted]"  # the text is redacted


def test_strings_are_redacted_wherever_they_are_and_nothing_else() -> None:
    secret = "sk-proj-0123456789"
    data = {"reason": None, "ok": True, "n": 1234, "args": {secret: f"a {secret} b", "list": [secret, 1.5]}}
    clean = redacted_strings(data, lambda text: text.replace(secret, "[redacted]").replace("1234", "[redacted]"))
    assert clean == {"reason": None, "ok": True, "n": 1234, "args": {"[redacted]": "a [redacted] b", "list": ["[redacted]", 1.5]}}
