"""The sync's reading thread: the connector's generator runs ahead of the store, and whatever way the sync ends,
the generator is closed in its own thread and its errors reach the store's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.connector import TransientError
from interlink.pipeline.sync import AHEAD, _Prefetch


def pages(count: int, closed: threading.Event, *, fail_after: int | None = None) -> Iterator[dict[str, Any]]:
    """``count`` pages of 3 records, each followed by its checkpoint; ``closed`` is set when it is closed."""
    try:
        for page in range(count):
            if fail_after is not None and page == fail_after:
                raise TransientError("vendor unavailable (HTTP 503)", delay=2.0)
            yield from ({"id": f"r{page}-{n}"} for n in range(3))
            yield {"checkpoint": {"page": page + 1}}
    finally:
        closed.set()


def test_segments_arrive_in_order_with_their_checkpoints_then_the_end() -> None:
    closed = threading.Event()
    ahead = _Prefetch(pages(4, closed), batch=100)
    segments = []
    while (segment := ahead.next()) is not None:
        segments.append(segment)
    ahead.close()
    assert [s.checkpoint for s in segments] == [{"page": 1}, {"page": 2}, {"page": 3}, {"page": 4}, None]
    assert [len(s.records) for s in segments] == [3, 3, 3, 3, 0]
    assert closed.is_set()


def test_an_error_of_the_connector_is_raised_in_the_store_thread_after_what_came_before() -> None:
    closed = threading.Event()
    ahead = _Prefetch(pages(5, closed, fail_after=2), batch=100)
    assert ahead.next() is not None
    assert ahead.next() is not None
    with pytest.raises(TransientError) as raised:
        ahead.next()
    assert raised.value.delay == 2.0
    ahead.close()
    assert closed.is_set()


def test_closing_while_the_reader_waits_on_a_full_queue_closes_the_generator() -> None:
    closed = threading.Event()
    ahead = _Prefetch(pages(10_000, closed), batch=100)
    ahead.next()
    time.sleep(0.2)  # the reader fills the queue (two segments ahead) and waits
    assert not closed.is_set(), "the reader must stay at most AHEAD segments ahead"
    started = time.monotonic()
    ahead.close()
    assert closed.is_set()
    assert time.monotonic() - started < 2


def test_records_without_checkpoints_come_in_batches() -> None:
    def endless_records() -> Iterator[dict[str, Any]]:
        n = 0
        while True:
            n += 1
            yield {"id": str(n)}

    ahead = _Prefetch(endless_records(), batch=50)
    first = ahead.next()
    ahead.close()
    assert first is not None
    assert (len(first.records), first.checkpoint) == (50, None)


def wait_until_read(ahead: _Prefetch, closed: threading.Event) -> None:
    """Until the reader has read everything it may (the generator closed, or the queue full)."""
    deadline = time.monotonic() + 5
    while not closed.is_set() and ahead._queue.qsize() < AHEAD and time.monotonic() < deadline:
        time.sleep(0.01)


def test_ready_hands_over_the_segments_already_read_and_leaves_the_end_to_next() -> None:
    closed = threading.Event()
    ahead = _Prefetch(pages(3, closed), batch=100)
    wait_until_read(ahead, closed)
    taken = [ahead.next(), ahead.ready(), ahead.ready(), ahead.ready()]
    assert [s.checkpoint if s else None for s in taken] == [{"page": 1}, {"page": 2}, {"page": 3}, None]
    assert ahead.ready() is None, "the end is not a segment: ready() keeps it for next()"
    assert ahead.next() is None
    ahead.close()


def test_ready_keeps_an_error_for_next_so_what_came_before_is_written_first() -> None:
    closed = threading.Event()
    ahead = _Prefetch(pages(5, closed, fail_after=1), batch=100)
    wait_until_read(ahead, closed)
    assert ahead.next() is not None
    assert ahead.ready() is None
    with pytest.raises(TransientError):
        ahead.next()
    ahead.close()


def test_ready_is_none_when_nothing_is_read_yet() -> None:
    release = threading.Event()

    def slow() -> Iterator[dict[str, Any]]:
        yield {"id": "1"}
        yield {"checkpoint": {"page": 1}}
        release.wait(5)
        yield {"id": "2"}

    ahead = _Prefetch(slow(), batch=100)
    assert ahead.next() is not None
    assert ahead.ready() is None
    release.set()
    second = ahead.next()
    assert second is not None
    assert [r["id"] for r in second.records] == ["2"]
    ahead.close()
