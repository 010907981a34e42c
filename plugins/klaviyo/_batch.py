"""Delivering several events at once: profile upserts one by one, tracked events in bulk-create jobs.

``POST /api/event-bulk-create-jobs`` takes events grouped by profile, at most 1000 events and 5 MB per
job (vendors.md §8). A job is accepted or refused whole, so when Klaviyo refuses one with a 4xx that
is not about credentials, its events are sent again one by one through Create Event: the bad one
fails alone. After a 401/403 or a 429 nothing more is sent in this batch; every event left gets that
same outcome (the key is wrong, or Klaviyo asked us to wait). Events that came from Klaviyo itself are
not sent back and count as delivered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from interlink.connector import ConnectorError, PermanentError, TransientError

from ._api import KlaviyoApi
from ._mapping import PROFILE_EVENTS, Track, bulk_job, echoes_klaviyo, event_document, profile_document, track_from

__all__ = ["MAX_JOB_BYTES", "MAX_JOB_EVENTS", "deliver_many", "plan_jobs", "track", "upsert_profile"]

MAX_JOB_EVENTS = 1000
MAX_JOB_BYTES = 5_000_000 - 64_000
"""5 MB less room for the job's own wrapping, so that an estimate near the limit never crosses it."""
_EVENT_WRAP = len('{"type":"event","attributes":},')
_GROUP_WRAP = 200


def track(api: KlaviyoApi, event: Mapping[str, Any], idempotency_key: str) -> None:
    """Create one event (``POST /api/events``, 202)."""
    if echoes_klaviyo(event):
        return
    api.post("/api/events", event_document(track_from(event, idempotency_key)))


def upsert_profile(api: KlaviyoApi, event: Mapping[str, Any]) -> None:
    """Create or update the profile of a ``customer.*`` event (``POST /api/profile-import``, 201 or 200)."""
    if echoes_klaviyo(event):
        return
    api.post("/api/profile-import", profile_document(event))


def deliver_many(api: KlaviyoApi, batch: Sequence[tuple[Mapping[str, Any], str]]) -> list[Exception | None]:
    """One outcome per event of ``batch``, in order: ``None`` when Klaviyo accepted it."""
    outcomes: list[Exception | None] = [None] * len(batch)
    stop: ConnectorError | None = None
    tracks: list[tuple[int, Track]] = []
    for index, (event, key) in enumerate(batch):
        if echoes_klaviyo(event):
            continue
        if str(event.get("type")) in PROFILE_EVENTS:
            if stop is not None:
                outcomes[index] = stop
                continue
            try:
                upsert_profile(api, event)
            except ConnectorError as exc:
                outcomes[index] = exc
                stop = stop or _stopping(exc)
            continue
        try:
            tracks.append((index, track_from(event, key)))
        except PermanentError as exc:
            outcomes[index] = exc
    for job in plan_jobs(tracks, outcomes):
        if stop is not None:
            for index, _ in job:
                outcomes[index] = stop
            continue
        try:
            api.post("/api/event-bulk-create-jobs", _job_body(job))
        except TransientError as exc:
            for index, _ in job:
                outcomes[index] = exc
            stop = _stopping(exc)
        except PermanentError as exc:
            stop = _stopping(exc)
            if stop is not None or len(job) == 1:
                for index, _ in job:
                    outcomes[index] = exc
            else:
                stop = _one_by_one(api, job, outcomes)
    return outcomes


def plan_jobs(tracks: list[tuple[int, Track]], outcomes: list[Exception | None]) -> list[list[tuple[int, Track]]]:
    """Split the events into jobs within Klaviyo's limits, events of one profile kept together.

    An event too large for any job gets a PermanentError in ``outcomes`` and is left out.
    """
    by_profile: dict[str, list[tuple[int, Track]]] = {}
    for pair in tracks:
        by_profile.setdefault(pair[1].profile_key, []).append(pair)
    jobs: list[list[tuple[int, Track]]] = []
    current: list[tuple[int, Track]] = []
    size = 0
    for key, items in by_profile.items():
        group_size = len(key) + _GROUP_WRAP
        opened = False
        for index, item in items:
            event_size = len(json.dumps(item.attributes, separators=(",", ":"))) + _EVENT_WRAP
            if event_size + group_size > MAX_JOB_BYTES:
                outcomes[index] = PermanentError("the event is larger than the 5 MB Klaviyo accepts")
                continue
            extra = event_size + (0 if opened else group_size)
            if current and (len(current) >= MAX_JOB_EVENTS or size + extra > MAX_JOB_BYTES):
                jobs.append(current)
                current, size, opened = [], 0, False
                extra = event_size + group_size
            current.append((index, item))
            size += extra
            opened = True
    if current:
        jobs.append(current)
    return jobs


def _job_body(job: list[tuple[int, Track]]) -> dict[str, Any]:
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for _, item in job:
        groups.setdefault(item.profile_key, (item.profile, []))[1].append(item.attributes)
    return bulk_job(list(groups.values()))


def _one_by_one(
    api: KlaviyoApi, job: list[tuple[int, Track]], outcomes: list[Exception | None]
) -> ConnectorError | None:
    """Create each event of a refused job on its own; the error that stops the batch, if one does."""
    for position, (index, item) in enumerate(job):
        try:
            api.post("/api/events", event_document(item))
        except ConnectorError as exc:
            outcomes[index] = exc
            stop = _stopping(exc)
            if stop is not None:
                for rest, _ in job[position + 1 :]:
                    outcomes[rest] = stop
                return stop
    return None


def _stopping(exc: ConnectorError) -> ConnectorError | None:
    """``exc`` when no further call of this batch can succeed: bad credentials, or a rate limit."""
    if isinstance(exc, PermanentError) and exc.setting in ("apiKey", "baseUrl", "revision"):
        return exc
    if isinstance(exc, TransientError) and "rate limit" in exc.message:
        return exc
    return None
