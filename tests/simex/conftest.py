from __future__ import annotations

from collections.abc import Iterator

import pytest

from sealbot.simex import SimexServer


@pytest.fixture(scope="module")
def simex() -> Iterator[SimexServer]:
    """One simex per test module, manual clock (speed 0): tests step time themselves."""
    with SimexServer(speed=0) as server:
        yield server
