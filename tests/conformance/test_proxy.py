"""The fault proxy forwards to its upstream, records every request, and injects faults where told."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from interlink.testing import EchoSink, Fault, FaultProxy


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with EchoSink() as sink, FaultProxy(sink.url + "/api") as running:
        yield running


def test_requests_are_forwarded_under_the_upstream_path_and_recorded(proxy: FaultProxy) -> None:
    with httpx.Client(timeout=5) as client:
        response = client.post(f"{proxy.url}/events?x=1", json={"a": 1}, headers={"X-Key": "k"})
    assert (response.status_code, response.json()) == (200, {"ok": True})
    [seen] = proxy.requests
    assert (seen.method, seen.path, seen.headers["x-key"], seen.body, seen.fault) == (
        "POST",
        "/events?x=1",
        "k",
        b'{"a":1}',
        None,
    )


def test_faults_apply_to_the_next_requests_then_forwarding_resumes(proxy: FaultProxy) -> None:
    proxy.fail_next(2, Fault.respond(429, retry_after=7))
    with httpx.Client(timeout=5) as client:
        answers = [client.get(f"{proxy.url}/x") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert [r.fault for r in proxy.requests] == ["HTTP 429", "HTTP 429", None]


def test_faults_can_target_paths(proxy: FaultProxy) -> None:
    proxy.inject(Fault.respond(503), times=None, path=r"^/slow")
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{proxy.url}/slow/1").status_code == 503
        assert client.get(f"{proxy.url}/fast").status_code == 200
        assert client.get(f"{proxy.url}/slow/2").status_code == 503
    proxy.clear_faults()
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{proxy.url}/slow/3").status_code == 200


def test_a_reset_is_a_transport_error(proxy: FaultProxy) -> None:
    proxy.fail_next(1, Fault.reset())
    with httpx.Client(timeout=5) as client, pytest.raises(httpx.TransportError):
        client.get(f"{proxy.url}/x")


def test_a_hang_outlasts_the_read_timeout(proxy: FaultProxy) -> None:
    proxy.fail_next(1, Fault.hang(2))
    with httpx.Client(timeout=httpx.Timeout(5, read=0.2)) as client, pytest.raises(httpx.ReadTimeout):
        client.get(f"{proxy.url}/x")


def test_a_slow_answer_still_arrives(proxy: FaultProxy) -> None:
    proxy.fail_next(1, Fault.slow(0.1))
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{proxy.url}/x").status_code == 200
