"""Delivering entries to subscribers (StreamLiveEntries).

A subscriber first reads the stored entries after its cursor from the live store, then follows
new ones. Every transaction of this process that takes cursors is handed, right after it
commits, to every open subscriber of this process (`EntryBroadcast.publish`) with the range of
cursors it took; a subscriber that has seen every cursor up to the start of that range takes
the range's entries from memory. Otherwise it reads the store again from its position: when
another process's transaction took cursors in between, when this process's transactions came
back out of order, when the subscriber fell so far behind that its queue was dropped, or when
nothing arrived for a poll interval (other processes' entries). Either way a subscriber
receives exactly the stored entries after its cursor, in cursor order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar, cast

from libs.common.wakeup import wait_for
from services.evaluator.domain.live_entries import Committed, Entry

if TYPE_CHECKING:
    from services.evaluator.live.engine import LiveEngine

T = TypeVar("T")
#: Entries read from the store per round trip.
FOLLOW_PAGE = 1000
#: Entries waiting for one subscriber: past this its queue is dropped, and it reads the store.
MAX_QUEUED = 20_000


class Published:
    """A committed transaction's entries as handed to subscribers: each entry is converted (to
    its message) once, for all the subscribers that send it."""

    __slots__ = ("_convert", "_converted", "after", "entries", "last")

    def __init__(self, committed: Committed) -> None:
        self.after = committed.after
        self.last = committed.last
        self.entries = committed.entries
        self._convert: Callable[[Entry], object] | None = None
        self._converted: list[object] = []

    def converted(self, index: int, convert: Callable[[Entry], T]) -> T:
        if self._convert is None:
            self._convert = convert
            self._converted = [None] * len(self.entries)
        elif self._convert is not convert:
            return convert(self.entries[index])  # another conversion: not kept
        message = self._converted[index]
        if message is None:
            message = self._converted[index] = convert(self.entries[index])
        return cast(T, message)


class EntryFeed:
    """What this process published since a subscriber subscribed, not yet taken by it."""

    def __init__(self, max_queued: int) -> None:
        self._queue: deque[Published] = deque()
        self._queued = 0
        self._max_queued = max_queued
        self._dropped = False
        self._closed = False
        self._arrived = asyncio.Event()

    def put(self, published: Published) -> None:
        if self._dropped:
            return  # the subscriber reads the store next, which covers this
        self._queue.append(published)
        self._queued += len(published.entries)
        if self._queued > self._max_queued:
            self._queue.clear()
            self._queued = 0
            self._dropped = True
        self._arrived.set()

    def close(self) -> None:
        """The process shuts down: `take` answers None at once from now on."""
        self._closed = True
        self._arrived.set()

    async def take(self, seconds: float) -> Published | None:
        """The next published transaction; None when the subscriber should read the store:
        nothing arrived within `seconds`, its queue was dropped, or the process shuts down."""
        if self._closed:
            return None
        if not self._queue and not self._dropped:
            self._arrived.clear()
            await wait_for(self._arrived, seconds)
        if self._dropped:
            self._dropped = False  # published from now on is queued; the rest is stored
            return None
        if not self._queue:
            return None
        published = self._queue.popleft()
        self._queued -= len(published.entries)
        return published


class EntryBroadcast:
    """Hands this process's committed entries to its subscribers."""

    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self._feeds: set[EntryFeed] = set()
        self._max_queued = max_queued
        #: set when the process shuts down: following subscribers are let go (they resume
        #: from their last cursor, on this process once it is back or on another one)
        self.closed = False

    def close(self) -> None:
        self.closed = True
        for feed in self._feeds:
            feed.close()

    @contextmanager
    def subscribe(self) -> Iterator[EntryFeed]:
        feed = EntryFeed(self._max_queued)
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)

    def publish(self, committed: Committed) -> None:
        if self._feeds:
            published = Published(committed)
            for feed in self._feeds:
                feed.put(published)


async def follow(
    engine: LiveEngine,
    project: str,
    segment_id: str | None,
    after: int,
    convert: Callable[[Entry], T],
) -> AsyncIterator[list[T]]:
    """The project's (or one segment's) entries after cursor `after`, in cursor order, each
    converted by `convert`: the stored ones first, then new ones as they are written, until
    this process shuts down (`EntryBroadcast.close`). In groups, never empty: the entries
    ready together (a page read from the store, a transaction's entries handed over)."""
    store = engine.store
    segment = None if segment_id is None else f"projects/{project}/segments/{segment_id}"
    with engine.broadcast.subscribe() as feed:
        position = after  # every entry with a cursor up to here was sent (or is not followed)
        while not engine.broadcast.closed:
            page, position = await store.entries_after(project, segment_id, position, FOLLOW_PAGE)
            if page:
                yield [convert(entry) for entry in page]
            if len(page) == FOLLOW_PAGE:
                continue
            # from memory while this process's transactions follow on from the position
            while (published := await feed.take(engine.settings.poll_seconds)) is not None:
                if published.last <= position:
                    continue  # read from the store already
                if published.after != position:
                    break  # cursors in between that this process did not hand over
                group = [
                    published.converted(index, convert)
                    for index, entry in enumerate(published.entries)
                    if entry.project == project and segment in (None, entry.segment)
                ]
                position = published.last
                if group:
                    yield group
