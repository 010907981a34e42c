"""Klaviyo's official SDK (klaviyo-api) against ``KlaviyoEmulator``: it behaves as it would against Klaviyo.

The SDK parses every answer into the pydantic models generated from Klaviyo's OpenAPI document, so if
it can authenticate, page, create events and profiles and raise its own error classes here, the
emulator speaks Klaviyo's protocol, and the connector's tests against it mean something.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openapi_client
import pytest
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException, BadRequestException, UnauthorizedException
from openapi_client.models import GetEventResponseCollectionCompoundDocument

from interlink.testing.emulators.klaviyo import KlaviyoEmulator


@pytest.fixture
def emulator() -> Iterator[KlaviyoEmulator]:
    with KlaviyoEmulator() as emu:
        yield emu


def sdk(emulator: KlaviyoEmulator, api_key: str | None = None, retries: int = 0) -> KlaviyoAPI:
    """A client of the emulator (``test_host``); the SDK's own retries off unless asked, waits short."""
    return KlaviyoAPI(api_key or emulator.api_key, max_delay=0, max_retries=retries, test_host=emulator.url)


def follow(link: str) -> str:
    """``links.next`` as the SDK's cursor helper expects it: it only looks inside ``https://`` links."""
    return link.replace("http://", "https://", 1)


def event_body(email: str, metric: str, unique_id: str) -> dict[str, Any]:
    profile = {"data": {"type": "profile", "attributes": {"email": email}}}
    attributes = {
        "properties": {"sku": "A-1"},
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": profile,
        "unique_id": unique_id,
        "value": 19.99,
        "value_currency": "USD",
        "time": "2026-11-26T10:00:00Z",
    }
    return {"data": {"type": "event", "attributes": attributes}}


def test_the_sdk_authenticates_and_reads_the_account(emulator: KlaviyoEmulator) -> None:
    accounts = sdk(emulator).Accounts.get_accounts()
    [account] = accounts.data
    assert account.id == "EmuAcc"
    assert account.attributes.contact_information.organization_name == "Interlink Emulator Co."
    seen = emulator.received[-1]
    assert seen.headers["authorization"] == f"Klaviyo-API-Key {emulator.api_key}"
    assert seen.headers["revision"] == KlaviyoAPI._REVISION  # the revision the SDK pins
    assert seen.headers["accept"] == "application/vnd.api+json"


def test_the_sdk_lists_events_and_pages_to_the_end_following_the_cursor(emulator: KlaviyoEmulator) -> None:
    made = emulator.add_events(450, ("Placed Order", "Opened Email"), start=datetime(2026, 11, 26, tzinfo=UTC))
    client = sdk(emulator)
    params: dict[str, Any] = {"page_size": 200, "sort": "datetime", "include": ["metric"]}
    pages = [client.Events.get_events(**params)]
    while pages[-1].links is not None and pages[-1].links.next:
        pages.append(client.Events.get_events(**params, page_cursor=follow(pages[-1].links.next)))
    assert all(isinstance(p, GetEventResponseCollectionCompoundDocument) for p in pages)
    assert [len(p.data) for p in pages] == [200, 200, 50]
    assert [e.id for p in pages for e in p.data] == [e["id"] for e in made]
    first = pages[0].data[0]
    assert first.attributes.datetime_ == datetime(2026, 11, 26, tzinfo=UTC)
    assert first.attributes.event_properties is not None
    assert first.attributes.event_properties["n"] == 0
    assert first.relationships is not None
    assert first.relationships.metric is not None
    assert first.relationships.metric.data is not None
    names = {m["id"]: m["attributes"]["name"] for p in pages for m in p.included or []}
    assert names[first.relationships.metric.data.id] == "Placed Order"

    since = (datetime(2026, 11, 26, tzinfo=UTC) + timedelta(seconds=447)).isoformat()
    recent = client.Events.get_events(filter=f"greater-than(datetime,{since})", sort="-datetime")
    assert [e.id for e in recent.data] == [made[-1]["id"], made[-2]["id"]]


def test_the_sdk_creates_an_event_once_for_a_unique_id_and_in_bulk(emulator: KlaviyoEmulator) -> None:
    client = sdk(emulator)
    body = event_body("ada@example.com", "Placed Order", "evt_01JPLATFORM0001")
    assert client.Events.create_event(body) is None  # 202, no body
    client.Events.create_event(body)  # a replay with the same unique_id
    [recorded] = emulator.events
    assert (recorded["metric"], recorded["unique_id"], recorded["value"]) == (
        "Placed Order",
        "evt_01JPLATFORM0001",
        19.99,
    )
    assert recorded["profile"] == {"email": "ada@example.com"}
    assert len(emulator.duplicates) == 1
    assert client.Events.create_event(event_body("ada@example.com", "Placed Order", "evt_2")) is None
    assert len(emulator.events) == 2

    events = [
        {"type": "event", "attributes": event_body("", "Viewed", f"v-{i}")["data"]["attributes"]} for i in range(3)
    ]
    for event in events:
        del event["attributes"]["profile"]
    group = {
        "type": "event-bulk-create",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": "bob@example.com"}}},
            "events": {"data": events},
        },
    }
    job = {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [group]}}}}
    client.Events.bulk_create_events(job)
    assert [e["unique_id"] for e in emulator.events if e["via"] == "bulk"] == ["v-0", "v-1", "v-2"]
    assert emulator.bulk_jobs[0]["events"] == 3


def test_the_sdk_imports_a_profile_created_then_updated(emulator: KlaviyoEmulator) -> None:
    api = sdk(emulator).Profiles
    body = {"data": {"type": "profile", "attributes": {"email": "ada@example.com", "first_name": "Ada"}}}
    created = api.create_or_update_profile_with_http_info(body)
    assert created.status_code == 201
    body["data"]["attributes"]["last_name"] = "Lovelace"
    updated = api.create_or_update_profile_with_http_info(body)
    assert updated.status_code == 200
    assert updated.data.data.id == created.data.data.id
    assert updated.data.data.attributes.last_name == "Lovelace"


def test_the_sdk_raises_its_own_errors(emulator: KlaviyoEmulator) -> None:
    with pytest.raises(UnauthorizedException) as refused:
        sdk(emulator, api_key="pk_wrong_0123456789abcdef").Accounts.get_accounts()
    assert refused.value.status == 401
    assert refused.value.data.errors[0].code == "authentication_failed"

    with pytest.raises(BadRequestException) as invalid:
        sdk(emulator).Events.get_events(filter="contains(metric,'x')")
    assert invalid.value.data.errors[0].source.parameter == "filter"

    emulator.fail_next(1, 429, headers={"Retry-After": "30"})
    with pytest.raises(ApiException) as throttled:  # a POST: the SDK's transport does not retry it itself
        sdk(emulator).Events.create_event(event_body("ada@example.com", "Placed Order", "u-1"))
    assert throttled.value.status == 429
    assert throttled.value.headers["Retry-After"] == "30"
    assert throttled.value.data.errors[0].code == "throttled"
    assert emulator.events == []

    emulator.fail_next(1, 503)
    with pytest.raises(openapi_client.exceptions.ServiceException):
        sdk(emulator).Accounts.get_accounts()


def test_the_sdk_retries_what_klaviyo_asks_it_to(emulator: KlaviyoEmulator) -> None:
    emulator.fail_next(1, 503)
    assert sdk(emulator, retries=2).Accounts.get_accounts().data[0].id == "EmuAcc"
    emulator.fail_next(1, 429, headers={"Retry-After": "0"})  # a GET: urllib3 waits Retry-After and retries
    assert sdk(emulator).Accounts.get_accounts().data[0].id == "EmuAcc"
    assert [r.path for r in emulator.received] == ["/api/accounts"] * 4
