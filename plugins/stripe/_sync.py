"""The pull sync: ``GET /v1/events`` from a ``created`` cursor, a page at a time, resumable at every page.

A run reads the window ``created[gte]=cursor .. created[lte]=until`` (``until`` is the run's start,
fixed, so events that arrive meanwhile wait for the next run) and pages through it with
``starting_after``, the API's own cursor: nothing here relies on the order Stripe lists events in
(newest first, but **UNCONFIRMED**). After each page the state is checkpointed:

* mid-run: ``{"cursor": gte, "until": lte, "after": <last event id read>}`` -- a killed worker resumes
  with the next page of the same window;
* at the end: ``{"cursor": until - OVERLAP_SECONDS}`` -- the next run reads the last few minutes again,
  for events Stripe makes visible late or clocks that disagree; the core drops what it has seen by id.

Stripe only lists the last 30 days: a first run starts there, and an older saved cursor is moved up to
it with a warning (those events can no longer be pulled). If Stripe no longer knows the ``after`` event,
the window is read again from its start: repeats are harmless, gaps are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from interlink.connector import ConnectorContext, PermanentError

from ._api import StripeApi, StripeRequestError
from ._events import event_envelope

__all__ = ["OVERLAP_SECONDS", "PAGE_SIZE", "WINDOW_SECONDS", "sync_events"]

WINDOW_SECONDS = 30 * 24 * 3600
"""How far back ``GET /v1/events`` reaches."""
OVERLAP_SECONDS = 300
"""How much of the previous run's window the next run reads again."""
PAGE_SIZE = 100
"""Stripe's largest ``limit``."""


def sync_events(api: StripeApi, ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
    """Yield one envelope per Event in the window, and a checkpoint after every page."""
    now = int(ctx.now().timestamp())
    oldest = now - WINDOW_SECONDS
    state = ctx.state
    saved, until, after = _int(state.get("cursor")), _int(state.get("until")), state.get("after")
    if until is None:  # a new run; else resume the interrupted one
        until, after = now, None
    if not isinstance(after, str) or not after:
        after = None
    since = oldest if saved is None else saved
    if since < oldest:
        ctx.logger.warning(
            "stripe sync: the saved cursor (%s) is older than the 30 days Stripe lists; events between it and %s "
            "can no longer be pulled (webhooks, if configured, delivered them)",
            since,
            oldest,
        )
        since = oldest
    window = {"limit": PAGE_SIZE, "created[gte]": since, "created[lte]": until}
    while True:
        try:
            page = api.get("/v1/events", {**window, "starting_after": after} if after else window)
        except StripeRequestError as exc:
            if after is None or exc.param != "starting_after":
                raise
            ctx.logger.warning("stripe sync: Stripe no longer knows event %s; reading the window again", after)
            after = None
            continue
        events = page.get("data")
        if not isinstance(events, list):
            raise PermanentError("GET /v1/events did not answer a list — check settings.baseUrl", setting="baseUrl")
        for event in events:
            yield event_envelope(event)
        if not events or page.get("has_more") is not True:
            yield {"checkpoint": {"cursor": max(since, until - OVERLAP_SECONDS)}}
            return
        after = str(events[-1]["id"])
        yield {"checkpoint": {"cursor": since, "until": until, "after": after}}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
