from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_prodkit.conf import reset_config
from tests.tools import Sleepers


@pytest.fixture(autouse=True)
def _fresh_config() -> Iterator[None]:
    """Each test starts and ends with the configuration read afresh (tests change env vars)."""
    reset_config()
    yield
    reset_config()


@pytest.fixture
def sleepers() -> Iterator[Sleepers]:
    """Real processes (``sleep``) that stand for live metric writers until the test kills them."""
    running = Sleepers()
    yield running
    running.stop()
