"""The pipeline's execution: actors on a Dramatiq broker, the worker that consumes them, the reaper and
the sync scheduler.

Actors are declared per runtime (not at import), so a process can hold an in-process pipeline and tests
can build as many as they need. Every process declares the same actor names on the same queues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import dramatiq

from interlink.broker import make_broker
from interlink.pipeline.deliver import deliver_batch
from interlink.pipeline.hook_worker import process_request
from interlink.pipeline.publish import Coalescer
from interlink.pipeline.reaper import Reaper
from interlink.pipeline.scheduler import Scheduler
from interlink.pipeline.sync import run_sync

if TYPE_CHECKING:
    from interlink.runtime import Runtime

__all__ = ["BATCH_SIZE", "Pipeline"]

log = logging.getLogger(__name__)

BATCH_SIZE = 50
"""Event ids per message: a real delivery then costs less than one broker round trip per event."""

DELIVERIES_QUEUE = "deliveries"
SYNCS_QUEUE = "syncs"
HOOKS_QUEUE = "hooks"
SYNC_TIME_LIMIT_MS = 6 * 3600 * 1000
"""A sync interrupted by this limit keeps its checkpoints: the reaper hands the run to a worker again."""


class Pipeline:
    """Sends event ids to ``deliver`` and sync run ids to ``sync``; runs a worker, the reaper and the scheduler."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.broker = make_broker(runtime.config.broker_url)

        def deliver(event_ids: list[str]) -> None:
            deliver_batch(runtime, event_ids)

        self.deliver = dramatiq.actor(
            broker=self.broker,
            actor_name="deliver",
            queue_name=DELIVERIES_QUEUE,
            max_retries=0,
            time_limit=int(runtime.config.lease_seconds * 1000),
        )(deliver)

        def sync(run_id: str) -> None:
            run_sync(runtime, run_id)

        self.sync = dramatiq.actor(
            broker=self.broker,
            actor_name="sync",
            queue_name=SYNCS_QUEUE,
            max_retries=0,
            time_limit=SYNC_TIME_LIMIT_MS,
        )(sync)

        def process_hook(request_id: str) -> None:
            process_request(runtime, request_id)

        self.process_hook = dramatiq.actor(
            broker=self.broker,
            actor_name="process_hook",
            queue_name=HOOKS_QUEUE,
            max_retries=0,
            time_limit=int(runtime.config.lease_seconds * 1000),
        )(process_hook)
        self.coalescer = Coalescer(runtime)
        self._worker: dramatiq.Worker | None = None
        self._reaper: Reaper | None = None
        self._scheduler: Scheduler | None = None

    @property
    def in_process(self) -> bool:
        """True on the embedded default: messages live in this process's memory."""
        return self.runtime.config.broker_url is None

    def dispatch(self, event_ids: Sequence[str], *, delay: float | None = None) -> None:
        """Send ids to the ``deliver`` actor in batches; ``delay`` in seconds before they are due."""
        delay_ms = int(delay * 1000) if delay else None
        for start in range(0, len(event_ids), BATCH_SIZE):
            chunk = list(event_ids[start : start + BATCH_SIZE])
            try:
                self.deliver.send_with_options(args=(chunk,), delay=delay_ms)
            except Exception:  # the rows are committed: the reaper sends them once the broker is back
                log.warning("broker unavailable; %d events wait for the reaper", len(chunk), exc_info=True)

    def dispatch_syncs(self, run_ids: Sequence[str]) -> None:
        """Send sync run ids to the ``sync`` actor, one message each (a run is long, and runs alone)."""
        for run_id in run_ids:
            try:
                self.sync.send(run_id)
            except Exception:  # the run is committed: the reaper sends it once the broker is back
                log.warning("broker unavailable; sync %s waits for the reaper", run_id, exc_info=True)

    def dispatch_hooks(self, request_ids: Sequence[str]) -> None:
        """Send stored webhook request ids to the ``process_hook`` actor, one message each."""
        for request_id in request_ids:
            try:
                self.process_hook.send(request_id)
            except Exception:  # the request is committed: the reaper sends it once the broker is back
                log.warning("broker unavailable; webhook request %s waits for the reaper", request_id, exc_info=True)

    def start(self, *, threads: int | None = None, reaper: bool = True) -> None:
        """Consume messages in this process (``threads`` worker threads); run the reaper and the scheduler."""
        if self._worker is None:
            self._worker = dramatiq.Worker(
                self.broker, worker_threads=threads or self.runtime.config.worker_threads, worker_timeout=100
            )
            self._worker.start()
        if reaper and self._reaper is None:
            self._reaper = Reaper(self.runtime)
            self._reaper.start()
        if reaper and self._scheduler is None:
            self._scheduler = Scheduler(self.runtime)
            self._scheduler.start()

    def stop(self) -> None:
        self.coalescer.stop()
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        if self._worker is not None:
            self._worker.stop(timeout=10_000)
            self._worker = None
        self.broker.close()
