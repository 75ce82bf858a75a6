"""The serving process's collector settings (`libs.common.heap`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from libs.common.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_start_up_made_and_spaces_young_collections() -> None:
    made_at_start = [[i] for i in range(1000)]
    settle_heap()
    assert gc.get_freeze_count() >= len(made_at_start)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    cycle: list[object] = []
    cycle.append(cycle)  # garbage made while serving is still collected
    del cycle
    assert gc.collect() >= 1
