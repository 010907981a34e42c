"""AppsFlyer events (a raw-data CSV row or a Push API message) as inbound envelopes.

Raw-data reports name their columns in words (``AppsFlyer ID``, ``Event Time``); the Push API uses
snake_case (``appsflyer_id``, ``event_time``). :func:`normalize` maps the first onto the second, so one
function builds the envelope of both, and the same event read by both gets the same id.

* ``id``: neither source carries an event id, so it is a digest, ``af_<sha256 prefix>``, of the
  ``appsflyer_id``, the ``event_name`` and the ``event_time`` to the second (raw data has seconds, the
  Push API milliseconds). An event pushed and later pulled to fill a gap is therefore recorded once. Two
  events of one device with the same name in the same second would collapse into one. A message without
  an ``appsflyer_id`` gets the digest of all its fields.
* ``type``: ``install``, ``reinstall``, ``re-engagement``, ``re-attribution`` as ``event_name`` says;
  ``uninstall`` for rows of the uninstall report; otherwise ``in-app-event`` (the name is in
  ``data.event_name``).
* ``occurred_at``: ``event_time`` (UTC, ``yyyy-mm-dd hh:mm:ss[.sss]``).
* ``subject``: ``id`` the ``appsflyer_id``, ``external_id`` the ``customer_user_id``.
* ``data.amount``: ``event_revenue`` in minor units of ``event_revenue_currency``.
* ``raw``: the message or the row as sent (empty CSV cells left out, as the Push API leaves out empty keys).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from interlink.envelope import envelope
from interlink.money import to_minor

__all__ = ["SOURCE", "event_record", "normalize"]

SOURCE = "appsflyer"
ATTRIBUTION_TYPES = frozenset({"install", "reinstall", "re-engagement", "re-attribution"})
_NON_WORD = re.compile(r"[^0-9a-z]+")
_DATA_FIELDS = (
    "event_name",
    "event_value",
    "event_revenue_usd",
    "media_source",
    "channel",
    "campaign",
    "campaign_id",
    "campaign_type",
    "conversion_type",
    "is_retargeting",
    "platform",
    "app_id",
    "app_version",
    "country_code",
    "install_time",
    "event_time",
    "customer_user_id",
)


def normalize(name: str) -> str:
    """A raw-data column name as the Push API spells it: ``AppsFlyer ID`` → ``appsflyer_id``."""
    return _NON_WORD.sub("_", name.lower().lstrip("\ufeff")).strip("_")


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _time(value: str | None) -> str | None:
    """ISO 8601 UTC from AppsFlyer's ``yyyy-mm-dd hh:mm:ss[.sss]`` (UTC), else the text as given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _record_id(fields: Mapping[str, Any]) -> str:
    device, name, at = _text(fields, "appsflyer_id"), _text(fields, "event_name"), _text(fields, "event_time")
    if device is not None:
        key = "|".join([device, name or "", (at or "").replace("T", " ")[:19]])
    else:
        key = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return "af_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _type(fields: Mapping[str, Any], report: str | None) -> str:
    name = (_text(fields, "event_name") or "").lower()
    if name in ATTRIBUTION_TYPES:
        return name
    if name == "uninstall" or (report is not None and report.startswith("uninstall")):
        return "uninstall"
    return "in-app-event"


def event_record(raw: Mapping[str, Any], *, report: str | None = None) -> dict[str, Any]:
    """The envelope of one event; ``raw`` keys may be raw-data column names or Push API keys."""
    fields = {normalize(str(k)): v for k, v in raw.items()}
    data: dict[str, Any] = {name: fields[name] for name in _DATA_FIELDS if _text(fields, name) is not None}
    currency = _text(fields, "event_revenue_currency")
    amount = to_minor(fields.get("event_revenue"), currency) if currency and len(currency) == 3 else None
    if amount is not None and currency is not None:
        data["amount"], data["currency"] = amount, currency.upper()
    if report is not None:
        data["report"] = report
    return envelope(
        id=_record_id(fields),
        type=_type(fields, report),
        source=SOURCE,
        occurred_at=_time(_text(fields, "event_time") or _text(fields, "install_time")),
        subject={"id": _text(fields, "appsflyer_id"), "external_id": _text(fields, "customer_user_id")},
        data=data,
        raw=raw,
    )
