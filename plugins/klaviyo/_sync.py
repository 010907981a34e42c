"""Pulling Klaviyo events: ``GET /api/events`` in datetime order, one inbound envelope per event.

The state is ``{"since": <datetime of the newest event seen>, "seen": [ids of the events at that
datetime]}``, checkpointed after every page. A run asks for ``greater-or-equal(datetime, since)``: Klaviyo
times are whole seconds, so events sharing the last second may arrive after a checkpoint and a strict
``greater-than`` could skip them; the ones already yielded are recognised by ``seen`` (and the core
drops any repeat by id anyway). A worker killed mid-run resumes at the last checkpoint with no gap.

Pages are followed by the ``page[cursor]`` of ``links.next``, sent to the configured base URL with the
query Klaviyo gave (so a proxy or an emulator behind ``baseUrl`` is honoured), until ``links.next`` is
null. Only one page is held at a time.

Known limit: Klaviyo lets a client record an event with a past ``time`` (a backfill); such an event
lands behind the cursor and is not pulled. The system webhooks deliver those as they happen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from interlink.connector import PermanentError
from interlink.envelope import envelope

from ._api import KlaviyoApi

__all__ = ["PAGE_SIZE", "event_type", "related_id", "sync_events"]

PAGE_SIZE = 200
"""Klaviyo's default page size, which is also the smallest maximum its documentation states."""
MAX_SEEN = 1000
"""Ids kept for the boundary second; past it, repeats are left to the core's de-duplication."""
_SLUG = re.compile(r"[^a-z0-9]+")


def event_type(metric_name: str | None) -> str:
    """``event:klaviyo.<metric>``, as Klaviyo names its system-webhook topics (``Opened Email`` → ``opened_email``)."""
    slug = _SLUG.sub("_", (metric_name or "").lower()).strip("_")
    return f"event:klaviyo.{slug[:150] or 'event'}"


def sync_events(api: KlaviyoApi, state: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield an envelope per event newer than ``state`` and a checkpoint after each page."""
    since = _parse_time(state.get("since"))
    seen = {str(i) for i in state.get("seen") or [] if isinstance(i, str | int)} if since else set()
    params = {
        "sort": "datetime",
        "page[size]": str(PAGE_SIZE),
        "include": "metric,profile",
        "fields[metric]": "name",
        "fields[profile]": "email,external_id,phone_number",
    }
    if since is not None:
        params["filter"] = f"greater-or-equal(datetime,{_format_time(since)})"
    query: Mapping[str, str] | str = params
    newest, newest_ids = since, sorted(seen)
    while True:
        page = _json(api.get("/api/events", query))
        metrics, profiles = _included(page.get("included"))
        data = page.get("data")
        for resource in data if isinstance(data, list) else []:
            if not isinstance(resource, Mapping) or not resource.get("id"):
                continue
            event_id = str(resource["id"])
            when = _parse_time(_attributes(resource).get("datetime"))
            if event_id in seen:
                continue
            yield _envelope(resource, metrics, profiles)
            if when is not None and (newest is None or when > newest):
                newest, newest_ids = when, [event_id]
            elif when is not None and when == newest and len(newest_ids) < MAX_SEEN:
                newest_ids.append(event_id)
        if newest is not None:
            yield {"checkpoint": {"since": _format_time(newest), "seen": newest_ids}}
        following = _next_query(page)
        del page, data, metrics, profiles  # one page at a time: let this one go before the next arrives
        if following is None:
            return
        if following == query:
            raise PermanentError("Klaviyo answered the same next-page link twice; the sync stopped to avoid a loop")
        query = following


def _envelope(
    resource: Mapping[str, Any], metrics: Mapping[str, str], profiles: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    attributes = _attributes(resource)
    metric_id = related_id(resource, "metric")
    profile_id = related_id(resource, "profile")
    metric = metrics.get(metric_id or "")
    properties = attributes.get("event_properties")
    properties = dict(properties) if isinstance(properties, Mapping) else {}
    profile = profiles.get(profile_id or "", {})
    data: dict[str, Any] = {
        "metric": metric,
        "metric_id": metric_id,
        "profile_id": profile_id,
        "properties": properties,
        "timestamp": attributes.get("timestamp"),
        "uuid": attributes.get("uuid"),
    }
    if isinstance(properties.get("$value"), int | float):
        data["value"] = properties["$value"]
    return envelope(
        id=str(resource["id"]),
        type=event_type(metric),
        source="klaviyo",
        occurred_at=attributes.get("datetime") or attributes.get("timestamp"),
        raw=resource,
        subject={
            "id": profile_id,
            "email": profile.get("email"),
            "external_id": profile.get("external_id"),
            "phone_number": profile.get("phone_number"),
        },
        data=data,
    )


def _json(response: Any) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise PermanentError("Klaviyo answered GET /api/events with a body that is not JSON") from None
    if not isinstance(body, Mapping):
        raise PermanentError("Klaviyo answered GET /api/events with a body that is not a JSON:API document")
    return body


def _included(included: Any) -> tuple[dict[str, str], dict[str, Mapping[str, Any]]]:
    """Metric names and profile attributes by id, from a page's ``included`` resources."""
    metrics: dict[str, str] = {}
    profiles: dict[str, Mapping[str, Any]] = {}
    for item in included if isinstance(included, list) else []:
        if not isinstance(item, Mapping) or not item.get("id"):
            continue
        attributes = _attributes(item)
        if item.get("type") == "metric" and isinstance(attributes.get("name"), str):
            metrics[str(item["id"])] = attributes["name"]
        elif item.get("type") == "profile":
            profiles[str(item["id"])] = attributes
    return metrics, profiles


def _attributes(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = resource.get("attributes")
    return attributes if isinstance(attributes, Mapping) else {}


def related_id(resource: Mapping[str, Any], name: str) -> str | None:
    """The id in ``relationships.<name>.data`` of a JSON:API resource."""
    relationships = resource.get("relationships")
    related = relationships.get(name) if isinstance(relationships, Mapping) else None
    data = related.get("data") if isinstance(related, Mapping) else None
    return str(data["id"]) if isinstance(data, Mapping) and data.get("id") else None


def _next_query(page: Mapping[str, Any]) -> str | None:
    """The query string of ``links.next``, or ``None`` on the last page."""
    links = page.get("links")
    following = links.get("next") if isinstance(links, Mapping) else None
    if not isinstance(following, str) or not following:
        return None
    query = urlsplit(following).query
    if "page" not in query:
        raise PermanentError("Klaviyo's links.next carries no page[cursor]; the sync cannot continue")
    return query


def _parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from Klaviyo's ISO 8601 (``...+00:00`` or ``...Z``) or unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _format_time(value: datetime) -> str:
    """``2026-01-02T03:04:05Z``: the form Klaviyo's filter documentation shows (no ``+`` to escape)."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
