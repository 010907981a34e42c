"""BigQuery over its REST API (``ctx.http`` to ``settings.baseUrl``), authenticated as a service account.

* **Check.** ``GET /bigquery/v2/projects/{project}/datasets/{dataset}``: the key works and the dataset is there.
* **Deliver.** ``tabledata.insertAll`` into ``{dataset}.{table}``, 500 rows (under 9 MB) a request, each row's
  ``insertId`` the idempotency key, so BigQuery drops a retried event (best effort: Google keeps insert ids
  for about a minute; the ``id`` column carries the key for a ``QUALIFY ROW_NUMBER() OVER (PARTITION BY id ...)``
  view when exactness matters). ``skipInvalidRows`` is on: valid rows are kept and each refused row is a
  :class:`PermanentError` with BigQuery's message. A missing table is created (``id``, ``type``, ``occurred_at``
  TIMESTAMP, ``data`` JSON) and the insert tried again once; while a new table is not yet visible to streaming
  the events are retried later (:class:`TransientError`, 30 s).
* **Sync.** One ``jobs.query`` per run (``SELECT * ... WHERE (cursor, key) > saved ORDER BY cursor, key``, named
  query parameters), its result read page by page (``getQueryResults`` with ``pageToken``, polled while the job
  runs), a checkpoint after each page: ``{"cursor", "key", "cursorType", "keyType"}`` as BigQuery
  query-parameter values. A run cut short resumes with a new query from the last checkpoint, so no row is
  lost and the table is scanned once per run, not once per page.

Errors: 401 is answered by a new token once, then a :class:`PermanentError` naming ``serviceAccountJson``, as
403 (but ``rateLimitExceeded``/``quotaExceeded`` 403s are transient); 404 names ``dsn``; 429/5xx are transient
with ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from interlink.connector import CheckResult, ConnectorContext, ConnectorError, PermanentError, TransientError
from interlink.http import parse_retry_after, raise_for_status, transient_from_transport_error

from . import _google
from ._common import DEFAULT_TABLE, event_row, identifier, row_envelope, source_columns

__all__ = ["EVENTS_SCHEMA", "PAGE_ROWS", "BigQueryApi", "check", "deliver_batch", "sync"]

DEFAULT_BASE_URL = "https://bigquery.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/bigquery"
PAGE_ROWS = 250
"""Rows per ``getQueryResults`` page: each row parses to ~1.7 KB of Python objects, so a page stays under 0.5 MB."""
INSERT_ROWS = 500
INSERT_BYTES = 9 * 1024 * 1024
"""Under insertAll's 10 MB request limit."""
QUERY_WAIT_MS = 10_000
"""How long each ``jobs.query``/``getQueryResults`` call waits for the job, under the client's read timeout."""
QUERY_POLLS = 30
NEW_TABLE_DELAY = 30.0
EVENTS_SCHEMA = [
    {"name": "id", "type": "STRING", "mode": "REQUIRED"},
    {"name": "type", "type": "STRING", "mode": "REQUIRED"},
    {"name": "occurred_at", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "data", "type": "JSON", "mode": "NULLABLE"},
]
_TRANSIENT_REASONS = frozenset({"rateLimitExceeded", "quotaExceeded", "backendError", "internalError", "timeout"})
_PARAM_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BigQueryApi:
    """Calls under ``{baseUrl}/bigquery/v2/projects/{project}`` with a service account's token."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self.account = _google.service_account(ctx)
        self.project, self.dataset = _target(ctx)
        base = str(ctx.settings.get("baseUrl") or DEFAULT_BASE_URL).strip().rstrip("/")
        self.root = f"{base.removesuffix('/bigquery/v2')}/bigquery/v2/projects/{quote(self.project, safe='')}"

    def call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request; return its JSON (a dict) on 2xx, else raise the typed error (see the module)."""
        response = self.send(method, path, body=body, params=params)
        self.raise_for_answer(response)
        return _json(response)

    def send(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """Send one request, with one fresh token when the cached one is refused; the answer unclassified."""
        for attempt in (1, 2):
            token = _google.access_token(self.ctx, self.account, SCOPE)
            try:
                response = self.ctx.http.request(
                    method,
                    self.root + path,
                    json=body,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
            except httpx.TransportError as exc:
                raise transient_from_transport_error(exc) from None
            if response.status_code != 401 or attempt == 2:
                return response
            _google.forget(self.account, SCOPE)
        raise AssertionError("unreachable")  # pragma: no cover

    def raise_for_answer(self, response: httpx.Response, *, missing: str = "dsn") -> None:
        """Classify a BigQuery answer; ``missing`` is the setting a 404 names."""
        status = response.status_code
        if status < 300:
            return
        error = _error(response)
        reason, message = error.get("reason", ""), error.get("message", "")
        detail = f"HTTP {status}" + (f": {message[:200]}" if message else "")
        if reason in _TRANSIENT_REASONS:
            delay = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(f"BigQuery is busy ({detail})", delay=delay)
        if status in (401, 403):
            raise PermanentError(
                f"BigQuery refused the service account ({detail}) — give it the BigQuery Data Editor and Job User "
                "roles, or update settings.serviceAccountJson",
                setting=_google.SETTING,
            )
        if status == 404:
            raise PermanentError(
                f"BigQuery found no such resource ({detail}) — update settings.{missing}", setting=missing
            )
        raise_for_status(response, setting="baseUrl" if status < 400 else None)


def check(ctx: ConnectorContext) -> CheckResult:
    """Read the dataset: proves the key, the project and the dataset in one call."""
    api = BigQueryApi(ctx)
    api.call("GET", f"/datasets/{quote(api.dataset, safe='')}")
    return CheckResult(ok=True, message=f"dataset {api.project}.{api.dataset} is reachable")


def deliver_batch(ctx: ConnectorContext, batch: Sequence[tuple[Mapping[str, Any], str]]) -> list[Exception | None]:
    """insertAll every event; one outcome per event, in order."""
    try:
        api = BigQueryApi(ctx)
        table = identifier(ctx, "table", DEFAULT_TABLE)
        assert table is not None
    except ConnectorError as exc:
        return [exc] * len(batch)
    outcomes: list[Exception | None] = []
    for chunk in _chunks([_insert_row(event, key) for event, key in batch]):
        try:
            outcomes += _insert(api, table, chunk)
        except ConnectorError as exc:
            outcomes += [exc] * len(chunk)
    return outcomes


def sync(ctx: ConnectorContext) -> Iterator[dict[str, Any]]:
    """Yield a ``warehouse.row`` envelope per source row past the saved cursor, a checkpoint per page."""
    columns = source_columns(ctx)
    if columns is None:
        return
    table, cursor, key = columns
    api = BigQueryApi(ctx)
    state = dict(ctx.state)
    source = f"`{api.project}.{api.dataset}.{table}`"
    request: dict[str, Any] = {
        "useLegacySql": False,
        "maxResults": PAGE_ROWS,
        "timeoutMs": QUERY_WAIT_MS,
        "formatOptions": {"useInt64Timestamp": True},
    }
    if all(isinstance(state.get(k), str) for k in ("cursor", "key", "cursorType", "keyType")):
        request["query"] = _query(source, cursor, key, resume=True)
        request["parameterMode"] = "NAMED"
        request["queryParameters"] = [
            {
                "name": "cursor",
                "parameterType": {"type": state["cursorType"]},
                "parameterValue": {"value": state["cursor"]},
            },
            {"name": "key", "parameterType": {"type": state["keyType"]}, "parameterValue": {"value": state["key"]}},
        ]
    else:
        state = {}
        request["query"] = _query(source, cursor, key, resume=False)
    response = api.send("POST", "/queries", body=request)
    if response.status_code == 400:
        message = _error(response).get("message", "")[:200]
        setting = "sourceTable" if "not found" in message.lower() else "cursorColumn"
        raise PermanentError(f"BigQuery refused the sync query ({message}) — check settings.{setting}", setting=setting)
    api.raise_for_answer(response, missing="sourceTable")
    page = _json(response)
    reference = page.get("jobReference")
    job: dict[str, Any] = reference if isinstance(reference, dict) else {}
    results = f"/queries/{quote(str(job.get('jobId', '')), safe='')}"
    base_params = {"maxResults": PAGE_ROWS, "timeoutMs": QUERY_WAIT_MS, "formatOptions.useInt64Timestamp": "true"}
    if job.get("location"):
        base_params["location"] = job["location"]
    polls = 0
    while page.get("jobComplete") is False:
        polls += 1
        if polls > QUERY_POLLS:
            raise TransientError("the sync query is still running in BigQuery; the next run starts it again")
        page = api.call("GET", results, params=base_params)
    while True:
        fields = _fields(page)
        rows: list[Any] = page.get("rows") or []
        for row in rows:
            cells = row.get("f") if isinstance(row, dict) else None
            if not isinstance(cells, list) or len(cells) != len(fields):
                raise PermanentError("BigQuery answered a row that does not match its schema — check settings.baseUrl")
            values = {
                f["name"]: _value(f, c.get("v") if isinstance(c, dict) else None)
                for f, c in zip(fields, cells, strict=True)
            }
            raw = {f["name"]: c.get("v") if isinstance(c, dict) else None for f, c in zip(fields, cells, strict=True)}
            if cursor not in values or key not in values:
                missing = "cursorColumn" if cursor not in values else "primaryKey"
                raise PermanentError(f"{table} has no such column — update settings.{missing}", setting=missing)
            yield row_envelope(table, values, cursor, key)
            state = {
                "cursor": _parameter(_field(fields, cursor), raw[cursor]),
                "key": _parameter(_field(fields, key), raw[key]),
                "cursorType": _parameter_type(_field(fields, cursor)),
                "keyType": _parameter_type(_field(fields, key)),
            }
        token, read = page.get("pageToken"), bool(rows)
        rows, page = [], {}  # let the page go before the next one arrives: memory stays one page
        if read or not token:
            yield {"checkpoint": dict(state)}
        if not isinstance(token, str) or not token:
            return
        page = api.call("GET", results, params={**base_params, "pageToken": token})


# -- deliver helpers ------------------------------------------------------------------------------


def _insert_row(event: Mapping[str, Any], key: str) -> dict[str, Any]:
    row = event_row(event, key)
    row["data"] = json.dumps(row["data"], separators=(",", ":"), ensure_ascii=False, default=str)
    return {"insertId": key, "json": row}


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        length = len(json.dumps(row, ensure_ascii=False).encode())
        if chunk and (len(chunk) >= INSERT_ROWS or size + length > INSERT_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += length
    if chunk:
        yield chunk


def _insert(api: BigQueryApi, table: str, rows: list[dict[str, Any]]) -> list[Exception | None]:
    path = f"/datasets/{quote(api.dataset, safe='')}/tables/{quote(table, safe='')}/insertAll"
    body = {"rows": rows, "skipInvalidRows": True, "ignoreUnknownValues": False}
    for attempt in (1, 2):
        response = api.send("POST", path, body=body)
        if response.status_code != 404 or not _missing_table(response):
            break
        if attempt == 2:
            raise TransientError("the new events table is not yet visible to streaming inserts", delay=NEW_TABLE_DELAY)
        _create_table(api, table)
    api.raise_for_answer(response, missing="dsn")
    outcomes: list[Exception | None] = [None] * len(rows)
    for item in _json(response).get("insertErrors") or []:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(rows):
            continue
        errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
        reasons = {str(e.get("reason", "")) for e in errors}
        message = "; ".join(str(e.get("message") or e.get("reason") or "") for e in errors)[:300] or "no reason given"
        if reasons and reasons <= (_TRANSIENT_REASONS | {"stopped"}):
            outcomes[index] = TransientError(f"BigQuery did not insert the row now ({message})")
        else:
            outcomes[index] = PermanentError(f"BigQuery refused the row: {message}")
    return outcomes


def _missing_table(response: httpx.Response) -> bool:
    return _error(response).get("message", "").lower().startswith("not found: table")


def _create_table(api: BigQueryApi, table: str) -> None:
    body = {
        "tableReference": {"projectId": api.project, "datasetId": api.dataset, "tableId": table},
        "schema": {"fields": EVENTS_SCHEMA},
        "description": "Events loaded by Interlink, one row per event id.",
    }
    response = api.send("POST", f"/datasets/{quote(api.dataset, safe='')}/tables", body=body)
    if response.status_code == 409:  # created meanwhile
        return
    try:
        api.raise_for_answer(response, missing="dsn")
    except PermanentError as exc:
        raise PermanentError(
            f"the events table {api.dataset}.{table} is missing and could not be created ({exc.message}); create it "
            f"with the columns {', '.join(f['name'] + ' ' + f['type'] for f in EVENTS_SCHEMA)}",
            setting=exc.setting or "table",
        ) from None
    api.ctx.logger.info("warehouse: created the BigQuery table %s.%s", api.dataset, table)


# -- sync helpers ---------------------------------------------------------------------------------


def _query(source: str, cursor: str, key: str, *, resume: bool) -> str:
    """The sync query; names come from settings checked by ``identifier()``, values go in as parameters."""
    where = (
        f"`{cursor}` > @cursor OR (`{cursor}` = @cursor AND `{key}` > @key)" if resume else f"`{cursor}` IS NOT NULL"
    )
    return f"SELECT * FROM {source} WHERE {where} ORDER BY `{cursor}`, `{key}`"  # noqa: S608


def _fields(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    schema = page.get("schema")
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields):
        if page.get("rows"):
            raise PermanentError("BigQuery answered rows without a schema — check settings.baseUrl", setting="baseUrl")
        return []
    return fields


def _field(fields: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(f for f in fields if f["name"] == name)


def _value(field: Mapping[str, Any], value: Any) -> Any:
    """A cell (``{"v": ...}`` value) as JSON: numbers, booleans, ISO times, parsed JSON, nested records."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED" and isinstance(value, list):
        single = {**field, "mode": "NULLABLE"}
        return [_value(single, item.get("v") if isinstance(item, dict) else item) for item in value]
    kind = str(field.get("type", "STRING")).upper()
    if kind in ("RECORD", "STRUCT") and isinstance(value, dict):
        subfields = field.get("fields") or []
        cells = value.get("f") or []
        return {f["name"]: _value(f, c.get("v")) for f, c in zip(subfields, cells, strict=False)}
    try:
        if kind in ("INTEGER", "INT64"):
            return int(value)
        if kind in ("FLOAT", "FLOAT64"):
            return float(value)
        if kind in ("BOOLEAN", "BOOL"):
            return str(value).lower() == "true"
        if kind == "TIMESTAMP":
            return _timestamp(value).isoformat().replace("+00:00", "Z")
        if kind == "JSON":
            return json.loads(value)
    except (TypeError, ValueError, OverflowError):
        return value
    return value


def _timestamp(value: Any) -> datetime:
    """A TIMESTAMP cell: int64 microseconds (``useInt64Timestamp``), else float seconds (``1.7E9``)."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return _EPOCH + timedelta(microseconds=int(text))
    return _EPOCH + timedelta(microseconds=round(float(text) * 1_000_000))


def _parameter_type(field: Mapping[str, Any]) -> str:
    kind = str(field.get("type", "STRING")).upper()
    return _PARAM_TYPES.get(kind, kind)


def _parameter(field: Mapping[str, Any], value: Any) -> str:
    """A cell as a query-parameter value of the column's type (so it compares exactly)."""
    if value is None:
        raise PermanentError(f"column {field['name']} holds NULL, so it cannot order rows — update settings.primaryKey")
    if str(field.get("type", "")).upper() == "TIMESTAMP":
        return _timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return str(value)


# -- small helpers ----------------------------------------------------------------------------------


def _target(ctx: ConnectorContext) -> tuple[str, str]:
    """``(project, dataset)`` from ``bigquery://project/dataset``; ``settings.schema`` names another dataset."""
    dsn = str(ctx.settings.get("dsn") or "").strip()
    parts = urlsplit(dsn)
    project, dataset = parts.netloc, parts.path.strip("/")
    if parts.scheme != "bigquery" or not project or "@" in project or "/" in dataset:
        raise PermanentError(
            "the connection URL is not bigquery://project/dataset — update settings.dsn", setting="dsn"
        )
    dataset = identifier(ctx, "schema") or dataset
    if not dataset:
        raise PermanentError(
            "no dataset: name it in settings.dsn (bigquery://project/dataset) or in settings.schema", setting="dsn"
        )
    return project, dataset


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error(response: httpx.Response) -> dict[str, str]:
    """``{"reason", "message"}`` from Google's error body (``{"error": {"message", "errors": [{"reason"}]}}``)."""
    error = _json(response).get("error")
    if not isinstance(error, dict):
        return {}
    details = error.get("errors")
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    return {"reason": str(first.get("reason") or ""), "message": str(error.get("message") or "")}
