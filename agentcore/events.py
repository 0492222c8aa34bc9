"""``agentcore.events``: the documented module path of the event types (they live in ``agentcore.core.events``)."""

from agentcore.core.events import *  # noqa: F403
from agentcore.core.events import __all__ as __all__
