from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_prodkit.conf import reset_config


@pytest.fixture(autouse=True)
def _fresh_config() -> Iterator[None]:
    """Each test starts and ends with the configuration read afresh (tests change env vars)."""
    reset_config()
    yield
    reset_config()
