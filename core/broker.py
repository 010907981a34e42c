"""Dramatiq broker selection: Redis (or RabbitMQ) when ``INTERLINK_BROKER_URL`` is set, else in-process.

Messages carry event ids only; the database holds everything else.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

__all__ = ["make_broker"]


def make_broker(url: str | None) -> dramatiq.Broker:
    """A broker for ``url``: ``redis://`` → RedisBroker, ``amqp://`` → RabbitmqBroker, none → in-process."""
    if url is None:
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)  # type: ignore[no-untyped-call]
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise ValueError(f"INTERLINK_BROKER_URL must start with redis:// or amqp://, got {url.split(':', 1)[0]}://")
