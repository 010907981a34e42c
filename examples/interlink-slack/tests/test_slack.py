"""Slack's own answers, classified: what each means for the event and which setting the user must fix."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest
from interlink.connector import ConnectorContext, PermanentError, TransientError
from interlink.http import recording_client

from interlink_slack import MAX_TEXT, SlackConnector, summary
from interlink_slack.emulator import SlackEmulator

EVENT = {"id": "evt_1", "type": "order.created", "occurred_at": "2025-01-01T00:00:00Z", "data": {"amount": 100}}
WEBHOOK = "https://hooks.slack.com/services/T1/B1/secret-part"


def context(handler: Callable[[httpx.Request], httpx.Response], **settings: str) -> ConnectorContext:
    values = {"webhookUrl": WEBHOOK, **settings}
    http = recording_client(secrets=[WEBHOOK], transport=httpx.MockTransport(handler))
    return ConnectorContext("int_test", values, http, logging.getLogger("slack-test"))


def answer(status: int, text: str, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, text=text, headers=headers)


def test_the_message_is_a_one_line_summary() -> None:
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    SlackConnector().deliver(context(ok, channel="#sales", username="Interlink"), EVENT, "evt_1")
    assert str(seen[0].url) == WEBHOOK
    assert json.loads(seen[0].content) == {
        "text": 'order.created evt_1: {"amount":100}',
        "channel": "#sales",
        "username": "Interlink",
    }


def test_long_data_is_truncated_and_markup_escaped() -> None:
    text = summary({**EVENT, "data": {"note": "<b>&" * 5000, "line": "a\nb"}})
    assert MAX_TEXT - 5 <= len(text) <= MAX_TEXT
    assert text.endswith("…")
    assert "\n" not in text
    assert "<" not in text
    assert "&lt;b&gt;&amp;" in text


@pytest.mark.parametrize(
    ("status", "code", "setting"),
    [
        (400, "invalid_payload", None),
        (403, "action_prohibited", "webhookUrl"),
        (404, "no_service", "webhookUrl"),
        (404, "channel_not_found", "channel"),
        (410, "channel_is_archived", "channel"),
    ],
)
def test_slack_errors_are_permanent_and_name_the_setting(status: int, code: str, setting: str | None) -> None:
    with pytest.raises(PermanentError) as error:
        SlackConnector().deliver(context(answer(status, code)), EVENT, "evt_1")
    assert code in error.value.message
    assert error.value.setting == setting
    assert "secret-part" not in error.value.message


def test_rate_limits_and_outages_are_transient() -> None:
    with pytest.raises(TransientError) as limited:
        SlackConnector().deliver(context(answer(429, "rate_limited", **{"Retry-After": "30"})), EVENT, "evt_1")
    assert limited.value.delay == 30
    with pytest.raises(TransientError):
        SlackConnector().deliver(context(answer(500, "rollup_error")), EVENT, "evt_1")


def test_the_emulator_answers_like_slack() -> None:
    with SlackEmulator(channels={"#sales"}) as slack, httpx.Client() as client:
        assert client.post(slack.url, json={"text": "hi"}).text == "ok"
        assert client.post(slack.url.rsplit("/", 1)[0] + "/wrong", json={"text": "hi"}).text == "no_service"
        assert client.post(slack.url, content=b"not json").text == "invalid_payload"
        assert client.post(slack.url, json={"text": ""}).text == "no_text"
        assert client.post(slack.url, json={"text": "hi", "channel": "#nope"}).text == "channel_not_found"
        assert slack.messages == [{"text": "hi"}]
