"""bind_on_first_use: the stand-in builds once, rebinds the module global, and returns real results."""

from __future__ import annotations

from typing import Any

from agentcore.core.first_use import bind_on_first_use


def test_the_stand_in_builds_once_and_rebinds_the_global() -> None:
    builds: list[int] = []

    def build() -> Any:
        builds.append(1)
        return lambda x: x * 2

    namespace: dict[str, Any] = {}
    namespace["double"] = bind_on_first_use(namespace, "double", build)
    stand_in = namespace["double"]
    assert stand_in(3) == 6
    assert namespace["double"] is not stand_in  # rebound to the real callable
    assert namespace["double"](4) == 8
    assert builds == [1]
    # code that kept the stand-in by value still works (it builds again)
    assert stand_in(5) == 10
    assert builds == [1, 1]


def test_fold_and_codec_validators_are_bound_after_first_use() -> None:
    from datetime import datetime, timezone

    from agentcore.core import event_codec
    from agentcore.core.event_codec import decode_event, encode_event
    from agentcore.core.events import UserMessaged

    event = UserMessaged(run_id="r", seq=1, at=datetime(2026, 1, 1, tzinfo=timezone.utc), text="hi")
    assert decode_event(encode_event(event)) == event
    assert not event_codec._validate_json.__name__.endswith("_on_first_use")
