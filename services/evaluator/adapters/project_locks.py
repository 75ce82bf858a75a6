"""Per-key write serialisation inside one process."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class ProjectLocks:
    """Serialises writes per key inside this process (ingest per project, lists per segment)."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def __call__(self, key: str) -> asyncio.Lock:
        return self._locks[key]
