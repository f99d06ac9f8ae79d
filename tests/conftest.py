from __future__ import annotations

import os
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


#: ``unit`` runs only the tests that start no server (tox's middle environments); anything else runs every test.
TEST_SCOPE = "PRODKIT_TEST_SCOPE"
#: ``1`` runs every test in every environment (``make test-all``, GitHub Actions), whatever the scope says.
FULL_MATRIX = "PRODKIT_FULL_MATRIX"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the server tests (marked ``e2e``) in an environment whose scope is ``unit``."""
    scope = os.environ.get(TEST_SCOPE, "all")
    if scope not in {"all", "unit"}:
        raise pytest.UsageError(f"{TEST_SCOPE}={scope!r}: use 'unit' or 'all'.")
    if scope == "all" or os.environ.get(FULL_MATRIX) == "1":
        return
    kept = [item for item in items if item.get_closest_marker("e2e") is None]
    left_out = [item for item in items if item.get_closest_marker("e2e") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def sleepers() -> Iterator[Sleepers]:
    """Real processes (``sleep``) that stand for live metric writers until the test kills them."""
    running = Sleepers()
    yield running
    running.stop()
