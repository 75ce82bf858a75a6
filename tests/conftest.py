"""Every test: no call of the product answered INTERNAL or UNKNOWN (a bug in our code, never an
answer to input), unless the test provokes an unexpected failure on purpose
(`@pytest.mark.provokes_internal`). Counted from the servers' own RPC metrics, so every server
running in the test process is covered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from libs.common import metrics

_BUGS = {"INTERNAL", "UNKNOWN"}


def _bug_answers() -> dict[str, float]:
    """Calls answered INTERNAL or UNKNOWN so far, by method and code."""
    found: dict[str, float] = {}
    for family in metrics.RPC_HANDLED.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("grpc_code") in _BUGS:
                method = f"{sample.labels['grpc_method']} {sample.labels['grpc_code']}"
                found[method] = found.get(method, 0.0) + sample.value
    return found


@pytest.fixture(autouse=True)
def no_internal_answers(request: pytest.FixtureRequest) -> Iterator[None]:
    before = _bug_answers()
    yield
    if request.node.get_closest_marker("provokes_internal"):
        return
    after = _bug_answers()
    new = {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}
    assert not new, f"calls answered INTERNAL or UNKNOWN during this test: {new}"
