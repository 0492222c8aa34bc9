"""``agentcore.events``: the documented module path of the event types and their codec (they live in
``agentcore.core.events`` and ``agentcore.core.event_codec``)."""

from agentcore.core.event_codec import *  # noqa: F403
from agentcore.core.event_codec import __all__ as _codec_all
from agentcore.core.events import *  # noqa: F403
from agentcore.core.events import __all__ as _events_all

__all__ = tuple(sorted((*_events_all, *_codec_all)))
