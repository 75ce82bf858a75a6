"""WatchLiveSegments: a listing of the current live segments, then their changes in order.

Writers note each change of a live segment in the same transaction as the change
(`Transaction.note_live_changes`); a watcher reads the changes after the last sequence it
has seen, woken at once by a change made in this process (`ChangeSignal`) and otherwise
every `POLL_SECONDS`, so that changes committed by another process of the service are seen
too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from libs.common.wakeup import Wakeup, wait_for
from services.definition.domain.live_feed import LiveChange
from services.definition.domain.ports import Store

#: How often a watcher looks for changes committed by other processes.
POLL_SECONDS = 0.2
#: Changes per message.
PAGE = 500


class ChangeSignal(Wakeup):
    """Wakes the watchers of this process when a write may have changed a live segment;
    `close()` ends their feeds (the service is shutting down: watchers resume elsewhere from
    their last sequence)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.notify()


@dataclass(frozen=True)
class FeedPage:
    reset: bool
    changes: list[LiveChange]
    sequence: int


async def watch_live_segments(
    store: Store, signal: ChangeSignal, project_id: str | None, after: int
) -> AsyncIterator[FeedPage]:
    """Pages of the feed until `signal` is closed: the listing first when `after` is 0."""
    if after == 0:
        async with store.transaction() as tx:
            # the sequence first: a change committed after it is sent again as a change
            after = await tx.live_sequence()
        first = True
        last: tuple[str, str] | None = None
        while True:
            async with store.transaction() as tx:
                listed = await tx.live_segments(project_id, last, PAGE)
            yield FeedPage(first, listed, after)
            first = False
            if len(listed) < PAGE:
                break
            last = (listed[-1].project_id, listed[-1].segment_id)
    while not signal.closed:
        notified = signal.current()
        async with store.transaction() as tx:
            changes = await tx.live_changes_after(project_id, after, PAGE)
        if changes:
            after = changes[-1].sequence
            yield FeedPage(False, changes, after)
        else:
            await wait_for(notified, POLL_SECONDS)
