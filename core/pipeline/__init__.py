"""The event pipeline: publish (fan-out + outbox), deliver, reaper; executed on Dramatiq."""

from interlink.pipeline.publish import EventIn, Published, parse_events, publish, publish_async

__all__ = ["EventIn", "Published", "parse_events", "publish", "publish_async"]
