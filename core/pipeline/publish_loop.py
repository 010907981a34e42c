"""Group commit on the event loop itself, for publishes made on an event loop on PostgreSQL.

Why: with the group writer in a thread of its own, every group of single-event publishes cost a GIL hand-off
from the loop to the writer, one back to the loop for the answers, and one after each call into the
database driver, each waiting for whichever thread held the GIL on a busy server: a third of the writer's
time. Here the loop builds the group's rows between two requests and sends the group's one statement on
an asynchronous connection of its own; while the statement runs, the loop reads the next requests, which
form the next group. One group at a time per loop, as with the writer thread (smaller, more frequent
groups cost PostgreSQL more than they save).

Only the common case is written here: a group whose fan-out is remembered, with no external ids to check
and small enough for one statement (``interlink.pipeline.publish.rows_from_memory``). Anything else,
a fan-out that changed meanwhile (the statement's guard wrote nothing) and a failed statement go to the
writer thread, which reads what it needs, isolates a failing request and answers the same waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from interlink.pipeline.publish_pg import published_statement

if TYPE_CHECKING:
    from interlink.pipeline.publish import GroupRows, PublishRequest, _Waiter

__all__ = ["APPLICATION_NAME", "LoopWriter"]

APPLICATION_NAME = "interlink publish (event loop)"
"""How the loops' connections show in ``pg_stat_activity``."""

log = logging.getLogger(__name__)

Group = list[tuple["PublishRequest", "_Waiter"]]


class LoopWriter:
    """One event loop's publish groups, committed on that loop (see the module's docstring).

    It holds no reference to its loop, so that a loop that is done with can be collected (and its
    connection closed, see ``Coalescer``).
    """

    def __init__(
        self,
        conninfo: str,
        prepare: Callable[[list[PublishRequest]], GroupRows | None],
        fall_back: Callable[[Group], None],
        dispatch: Callable[[list[str]], None],
        forget_targets: Callable[[], None],
    ) -> None:
        self._conninfo = conninfo
        self._prepare = prepare
        self._fall_back = fall_back
        self._dispatch = dispatch
        self._forget_targets = forget_targets
        self._pending: Group = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def submit(self, request: PublishRequest, waiter: _Waiter) -> None:
        """Add a request to the next group (on the loop); a group starts once the loop has run its ready callbacks."""
        self._pending.append((request, waiter))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().call_soon(self._start)

    def close(self) -> None:
        """Close the connection (from any thread: the process or the runtime is stopping)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    def _start(self) -> None:
        """Write what is pending (never nothing: only :meth:`submit` and the end of a write start a group)."""
        group, self._pending = self._pending, []
        self._task = asyncio.get_running_loop().create_task(self._write(group))

    async def _write(self, group: Group) -> None:
        try:
            rows = self._prepare([request for request, _ in group])
            if rows is None:
                self._fall_back(group)
            elif await self._insert(rows):
                for (_, waiter), result in zip(group, rows.results, strict=True):
                    if not waiter.future.done():  # a client that went away
                        waiter.future.set_result(result)
                if rows.event_rows:
                    self._dispatch(rows.event_ids)
            else:  # the fan-out changed since it was remembered: nothing was written
                self._forget_targets()
                self._fall_back(group)
        except Exception as exc:
            log.warning("publish: a group failed on the event loop (%s); the writer thread retries it", exc)
            self.close()
            self._fall_back(group)
        finally:
            if self._pending:
                self._start()
            else:
                self._busy = False
                self._task = None  # a done task would keep the loop alive

    async def _insert(self, rows: GroupRows) -> bool:
        """Run the group's statement; whether it wrote (its fan-out guard held)."""
        statement, params = published_statement(rows.payload_rows, rows.event_rows, rows.guards)
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=APPLICATION_NAME
            )
        async with psycopg.AsyncRawCursor(conn) as cursor:
            await cursor.execute(statement, params)
            fresh = await cursor.fetchone() if rows.guards else (True,)
        return bool(fresh and fresh[0])
