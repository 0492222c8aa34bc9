"""The ``--kills N`` option of the crash torture test (``tests/guarantees/test_crash_torture.py``).

pytest reads ``pytest_addoption`` only from conftest files and plugins, so this module is listed in
``pytest_plugins`` of ``tests/conftest.py``. Without it the test falls back to the environment
variable ``AGENTCORE_TORTURE_KILLS`` and then to its default.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kills",
        type=int,
        default=None,
        help="SIGKILLs the crash torture test deals out in total (default 50; env AGENTCORE_TORTURE_KILLS)",
    )
