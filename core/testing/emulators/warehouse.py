"""A local BigQuery (REST API v2) for the ``warehouse`` connector, with Google's service-account token endpoint.

What it serves, as Google does (``vendors.md`` section 9):

* ``POST /token``: the JWT grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``); the assertion
  must be RS256-signed by the emulator's service-account key (:meth:`WarehouseEmulator.service_account_json`
  is a key file whose ``token_uri`` points here), with ``aud`` = that URL and the BigQuery scope. It answers
  ``{access_token, expires_in, token_type}`` or ``400 {"error": "invalid_grant", ...}``.
* Under ``/bigquery/v2/projects/{project}``, with ``Authorization: Bearer <access token>``: ``GET
  datasets/{d}``, ``GET``/``POST datasets/{d}/tables[/{t}]``, ``POST .../tables/{t}/insertAll`` (per-row
  ``insertErrors``, ``insertId`` de-duplication, ``skipInvalidRows``, ``ignoreUnknownValues``), ``POST
  queries`` (jobs.query) and ``GET queries/{jobId}`` (getQueryResults with ``pageToken``/``maxResults``).
  Errors are Google's ``{"error": {code, message, errors: [{reason, message}], status}}``.

Queries run on SQLite, which reads BigQuery's backtick-quoted ``project.dataset.table`` names and ``@name``
parameters as they are: enough for the SELECTs the connector sends, not a SQL dialect emulator. TIMESTAMPs are
kept as microseconds and answered as int64 strings (``formatOptions.useInt64Timestamp``) or float seconds.
:attr:`WarehouseEmulator.pending_polls` makes the next queries answer ``jobComplete: false`` that many times.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlink.testing.emulators.base import Emulator, Request, Response

__all__ = ["WarehouseEmulator", "new_key"]

SCOPE = "https://www.googleapis.com/auth/bigquery"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_API = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/(?P<rest>.*)$")
_SQL_TYPES = {"INTEGER": "INTEGER", "INT64": "INTEGER", "TIMESTAMP": "INTEGER", "BOOLEAN": "INTEGER", "BOOL": "INTEGER"}
_SQL_TYPES |= {"FLOAT": "REAL", "FLOAT64": "REAL"}
SOURCE_SCHEMA = [
    {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "updated_at", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "email", "type": "STRING", "mode": "NULLABLE"},
    {"name": "amount", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "currency", "type": "STRING", "mode": "NULLABLE"},
    {"name": "paid", "type": "BOOLEAN", "mode": "NULLABLE"},
]


@cache
def new_key(seed: int = 0) -> rsa.RSAPrivateKey:
    """An RSA key, one per ``seed`` per process (generating one costs tens of milliseconds)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def google_error(status: int, message: str, reason: str, state: str) -> Response:
    """Google's error body."""
    error = {"code": status, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}
    return Response(status, {"error": {**error, "status": state}})


class WarehouseEmulator(Emulator):
    """BigQuery: one project, one dataset holding the source table ``orders`` (empty until seeded)."""

    service = "warehouse"
    project = "emulated-project"
    dataset = "analytics"
    source_table = "orders"
    client_email = "interlink-loader@emulated-project.iam.gserviceaccount.com"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = new_key()
        self.key_id = "emulated-key-1"
        self.tokens: dict[str, float] = {}
        """Access tokens issued, with their expiry (monotonic seconds)."""
        self.grants = 0
        self.pending_polls = 0
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.schemas: dict[str, list[dict[str, Any]]] = {}
        self.insert_ids: dict[str, set[str]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.create_table(self.source_table, SOURCE_SCHEMA)
        self._next_row = 1

    # -- data -------------------------------------------------------------------------------------

    def full_name(self, table: str, dataset: str | None = None) -> str:
        return f"{self.project}.{dataset or self.dataset}.{table}"

    def create_table(self, table: str, fields: list[dict[str, Any]], dataset: str | None = None) -> None:
        name = self.full_name(table, dataset)
        columns = ", ".join(f'"{f["name"]}" {_SQL_TYPES.get(str(f["type"]).upper(), "TEXT")}' for f in fields)
        with self.lock:
            self.db.execute(f'CREATE TABLE "{name}" ({columns})')
            self.schemas[name] = [dict(f) for f in fields]
            self.insert_ids[name] = set()

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as JSON values (TIMESTAMPs as ISO strings), in insertion order."""
        name = self.full_name(table)
        with self.lock:
            fields = self.schemas[name]
            found = self.db.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()  # noqa: S608 - test data
        return [{f["name"]: _shown(f, v) for f, v in zip(fields, row, strict=True)} for row in found]

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Store rows as they are (values already in the column's type), bypassing the API."""
        name = self.full_name(table)
        with self.lock:
            fields = self.schemas[name]
            marks = ", ".join("?" for _ in fields)
            self.db.executemany(
                f'INSERT INTO "{name}" VALUES ({marks})',  # noqa: S608 - test data
                [tuple(_stored(f, r.get(f["name"])) for f in fields) for r in rows],
            )

    def service_account_json(self, key: rsa.RSAPrivateKey | None = None) -> str:
        """A service-account key file the token endpoint accepts (with another ``key``, one it refuses)."""
        pem = (key or self.key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        info = {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": self.key_id,
            "private_key": pem.decode(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "token_uri": f"{self.url}/token",
        }
        return json.dumps(info, indent=2)

    def expire_tokens(self) -> None:
        """Make every issued access token invalid (as a revoked or expired one)."""
        with self.lock:
            self.tokens.clear()

    # -- what the conformance suite asks ----------------------------------------------------------

    webhook_signed = False
    webhook_timestamped = False

    def integration_settings(self) -> dict[str, Any]:
        return {
            "kind": "bigquery",
            "dsn": f"bigquery://{self.project}/{self.dataset}",
            "serviceAccountJson": self.service_account_json(),
            "schema": self.dataset,
            "table": "interlink_events",
            "sourceTable": self.source_table,
            "cursorColumn": "updated_at",
            "primaryKey": "id",
            "baseUrl": self.url,
        }

    def seed_records(self, count: int) -> None:
        """Append ``count`` orders; every three share an ``updated_at``, so the key breaks ties."""
        start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        with self.lock:
            first, self._next_row = self._next_row, self._next_row + count
        rows = [
            {
                "id": n,
                "updated_at": int((start + n // 3) * 1_000_000),
                "email": f"customer{n}@example.com",
                "amount": n * 100,
                "currency": "USD",
                "paid": n % 2 == 0,
            }
            for n in range(first, first + count)
        ]
        self.insert(self.source_table, rows)

    # -- the Emulator hooks -----------------------------------------------------------------------

    def public(self, request: Request) -> bool:
        return request.path == "/token"

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is not None and expiry > time.monotonic():
            return None
        return google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.",
            "authError",
            "UNAUTHENTICATED",
        )

    def rate_limited(self, retry_after: int) -> Response:
        response = google_error(
            429, "Exceeded rate limits: too many api requests", "rateLimitExceeded", "RESOURCE_EXHAUSTED"
        )
        response.headers["Retry-After"] = str(retry_after)
        return response

    def control(self, request: Request) -> Response | None:
        """``GET /_emulator/service-account``: the key file to paste into ``serviceAccountJson``; ``GET
        /_emulator/tables``: row counts; ``GET /_emulator/tables/{table}``: its rows; ``POST /_emulator/seed``
        with ``{"count": n}``: append n orders."""
        if request.method == "GET" and request.path == "/_emulator/service-account":
            return Response(200, json.loads(self.service_account_json()))
        if request.method == "GET" and request.path == "/_emulator/tables":
            with self.lock:
                counts = {n: self.db.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in self.schemas}  # noqa: S608
            return Response(200, {"tables": counts})
        if request.method == "GET" and request.path.startswith("/_emulator/tables/"):
            table = request.path.removeprefix("/_emulator/tables/")
            if self.full_name(table) not in self.schemas:
                return Response(404, {"error": f"no table {table}"})
            return Response(200, {"rows": self.rows(table)})
        if request.method == "POST" and request.path == "/_emulator/seed":
            try:
                count = int((request.json() or {}).get("count", 10))
            except (ValueError, TypeError, AttributeError):
                return Response(400, {"error": 'send {"count": 10}'})
            self.seed_records(max(0, min(count, 100_000)))
            return Response(200, {"seeded": count})
        return super().control(request)

    def route(self, request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        match = _API.match(request.path)
        if match is None:
            return google_error(404, f"Not found: {request.path}", "notFound", "NOT_FOUND")
        if match["project"] != self.project:
            return google_error(404, f"Not found: Project {match['project']}", "notFound", "NOT_FOUND")
        parts = match["rest"].split("/")
        if parts[0] == "queries":
            if request.method == "POST" and len(parts) == 1:
                return self._query(request)
            if request.method == "GET" and len(parts) == 2:
                return self._results(request, parts[1])
        if parts[0] == "datasets" and len(parts) >= 2:
            if parts[1] != self.dataset:
                return google_error(404, f"Not found: Dataset {self.project}:{parts[1]}", "notFound", "NOT_FOUND")
            if len(parts) == 2 and request.method == "GET":
                return Response(200, self._dataset())
            if len(parts) == 3 and parts[2] == "tables" and request.method == "POST":
                return self._create(request)
            if len(parts) >= 4 and parts[2] == "tables":
                name = self.full_name(parts[3])
                if name not in self.schemas:
                    table = f"{self.project}:{self.dataset}.{parts[3]}"
                    return google_error(404, f"Not found: Table {table}", "notFound", "NOT_FOUND")
                if len(parts) == 4 and request.method == "GET":
                    return Response(200, self._table(name))
                if len(parts) == 5 and parts[4] == "insertAll" and request.method == "POST":
                    return self._insert_all(request, name)
        return google_error(404, f"Not found: {request.method} {request.path}", "notFound", "NOT_FOUND")

    # -- endpoints --------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type", [""])[0] != GRANT_TYPE:
            return Response(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        problem = self._bad_assertion(form.get("assertion", [""])[0])
        if problem:
            return Response(400, {"error": "invalid_grant", "error_description": problem})
        token = f"ya29.emulated-{secrets.token_hex(16)}"
        with self.lock:
            self.tokens[token] = time.monotonic() + 3600
            self.grants += 1
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _bad_assertion(self, assertion: str) -> str | None:
        try:
            head, body, signature = assertion.split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
            self.key.public_key().verify(
                _unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        except (ValueError, TypeError):
            return "Invalid JWT: the assertion is not a JWT."
        now = time.time()
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256."
        if claims.get("iss") != self.client_email:
            return "Invalid grant: account not found"
        if claims.get("aud") != f"{self.url}/token":
            return "Invalid JWT: audience is not the token URI."
        if SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: no BigQuery scope."
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or not iat - 300 <= now <= exp:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        return None

    def _dataset(self) -> dict[str, Any]:
        ref = {"projectId": self.project, "datasetId": self.dataset}
        return {"kind": "bigquery#dataset", "id": f"{self.project}:{self.dataset}", "datasetReference": ref}

    def _table(self, name: str) -> dict[str, Any]:
        project, dataset, table = name.split(".")
        ref = {"projectId": project, "datasetId": dataset, "tableId": table}
        return {"kind": "bigquery#table", "tableReference": ref, "schema": {"fields": self.schemas[name]}}

    def _create(self, request: Request) -> Response:
        body = _body(request)
        ref = body.get("tableReference") or {}
        fields = (body.get("schema") or {}).get("fields")
        table = ref.get("tableId") if isinstance(ref, dict) else None
        if not isinstance(table, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", table) or not fields:
            return google_error(
                400,
                "Invalid table: tableReference.tableId and schema.fields are required",
                "invalid",
                "INVALID_ARGUMENT",
            )
        name = self.full_name(table)
        if name in self.schemas:
            return google_error(
                409, f"Already Exists: Table {self.project}:{self.dataset}.{table}", "duplicate", "ALREADY_EXISTS"
            )
        self.create_table(table, fields)
        return Response(200, self._table(name))

    def _insert_all(self, request: Request, name: str) -> Response:
        body = _body(request)
        rows = body.get("rows")
        if not isinstance(rows, list) or not rows:
            return google_error(400, "No rows present in the request.", "invalid", "INVALID_ARGUMENT")
        fields = {f["name"]: f for f in self.schemas[name]}
        errors: dict[int, str] = {}
        prepared: list[tuple[str | None, dict[str, Any]]] = []
        for index, row in enumerate(rows):
            values = row.get("json") if isinstance(row, dict) else None
            if not isinstance(values, dict):
                errors[index] = "Row is not a JSON object."
                continue
            problem = _row_problem(values, fields, bool(body.get("ignoreUnknownValues")))
            if problem:
                errors[index] = problem
                continue
            prepared.append((row.get("insertId"), values))
        answer: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
        if errors:
            skip = bool(body.get("skipInvalidRows"))
            answer["insertErrors"] = [
                {"index": i, "errors": [{"reason": "invalid", "location": "", "message": m}]} for i, m in errors.items()
            ]
            if not skip:
                answer["insertErrors"] += [
                    {"index": i, "errors": [{"reason": "stopped", "location": "", "message": ""}]}
                    for i in range(len(rows))
                    if i not in errors
                ]
                return Response(200, answer)
        with self.lock:
            seen = self.insert_ids[name]
            fresh = [v for key, v in prepared if not (key and key in seen)]
            seen.update(str(key) for key, _ in prepared if key)
            marks = ", ".join("?" for _ in fields)
            self.db.executemany(
                f'INSERT INTO "{name}" VALUES ({marks})',  # noqa: S608 - names from the emulator's own schema
                [tuple(_stored(f, _loaded(f, v.get(n))) for n, f in fields.items()) for v in fresh],
            )
        return Response(200, answer)

    def _query(self, request: Request) -> Response:
        body = _body(request)
        sql = str(body.get("query") or "")
        if not sql.lstrip().upper().startswith("SELECT") or ";" in sql:
            return google_error(400, "Syntax error: the emulator runs one SELECT", "invalidQuery", "INVALID_ARGUMENT")
        params: dict[str, Any] = {}
        for param in body.get("queryParameters") or []:
            kind = str(param.get("parameterType", {}).get("type", "STRING"))
            params[str(param.get("name"))] = _stored(
                {"type": kind}, _loaded({"type": kind}, param.get("parameterValue", {}).get("value"))
            )
        found = re.search(r"FROM\s+`([^`]+)`", sql)
        name = found[1] if found else ""
        if name not in self.schemas:
            where = name.replace(".", ":", 1)
            return google_error(404, f"Not found: Table {where} was not found in location US", "notFound", "NOT_FOUND")
        try:
            with self.lock:
                total = self.db.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0]  # noqa: S608
        except sqlite3.Error as exc:
            message = str(exc)
            if message.startswith("no such column: "):
                message = f"Unrecognized name: {message.removeprefix('no such column: ')}"
            return google_error(400, message, "invalidQuery", "INVALID_ARGUMENT")
        job_id = f"job_{secrets.token_hex(8)}"
        use_int64 = bool((body.get("formatOptions") or {}).get("useInt64Timestamp"))
        with self.lock:
            polls, self.pending_polls = self.pending_polls, 0
            self.jobs[job_id] = {"sql": sql, "params": params, "table": name, "total": total, "polls": polls}
        page_size = int(body.get("maxResults") or 100_000)
        return self._page(job_id, 0, page_size, use_int64)

    def _results(self, request: Request, job_id: str) -> Response:
        if job_id not in self.jobs:
            return google_error(404, f"Not found: Job {self.project}:US.{job_id}", "notFound", "NOT_FOUND")
        token = request.arg("pageToken")
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            return google_error(400, "Invalid page token", "invalid", "INVALID_ARGUMENT")
        page_size = int(request.arg("maxResults") or 100_000)
        use_int64 = request.arg("formatOptions.useInt64Timestamp") == "true"
        return self._page(job_id, offset, page_size, use_int64)

    def _page(self, job_id: str, offset: int, page_size: int, use_int64: bool) -> Response:
        job = self.jobs[job_id]
        ref = {"projectId": self.project, "jobId": job_id, "location": "US"}
        with self.lock:
            if job["polls"] > 0:
                job["polls"] -= 1
                return Response(200, {"kind": "bigquery#queryResponse", "jobReference": ref, "jobComplete": False})
            cursor = self.db.execute(
                f"SELECT * FROM ({job['sql']}) LIMIT {int(page_size)} OFFSET {int(offset)}",  # noqa: S608
                job["params"],
            )
            names = [d[0] for d in cursor.description]
            by_name = {f["name"]: f for f in self.schemas[job["table"]]}
            fields = [by_name.get(n, {"name": n, "type": "STRING", "mode": "NULLABLE"}) for n in names]
            # Each row encoded as it is read: the emulator runs in the connector's process, and its memory must
            # not be mistaken for the connector's by the conformance suite's memory check.
            rows = [
                json.dumps({"f": [{"v": _cell(f, v, use_int64)} for f, v in zip(fields, row, strict=True)]})
                for row in cursor
            ]
        answer: dict[str, Any] = {
            "kind": "bigquery#queryResponse",
            "jobReference": ref,
            "jobComplete": True,
            "schema": {"fields": fields},
            "totalRows": str(job["total"]),
        }
        if offset + len(rows) < job["total"]:
            answer["pageToken"] = base64.urlsafe_b64encode(str(offset + len(rows)).encode()).decode()
        head = json.dumps(answer)
        return Response(200, f'{head[:-1]}, "rows": [{",".join(rows)}]}}'.encode())


# -- values -----------------------------------------------------------------------------------------


def _row_problem(values: dict[str, Any], fields: dict[str, dict[str, Any]], ignore_unknown: bool) -> str | None:
    for name in values:
        if name not in fields and not ignore_unknown:
            return f"no such field: {name}."
    for name, field in fields.items():
        value = values.get(name)
        if value is None:
            if field.get("mode") == "REQUIRED":
                return f"Missing required field: {name}."
            continue
        try:
            _loaded(field, value)
        except (TypeError, ValueError):
            return f"Cannot convert value to {field['type']}: {str(value)[:40]}."
    return None


def _loaded(field: dict[str, Any], value: Any) -> Any:
    """A JSON or parameter value as the column's Python value; ``ValueError`` when it does not fit."""
    kind = str(field.get("type", "STRING")).upper()
    if value is None:
        return None
    if kind in ("INTEGER", "INT64"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if kind in ("FLOAT", "FLOAT64"):
        return float(value)
    if kind in ("BOOLEAN", "BOOL"):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError(value)
    if kind == "TIMESTAMP":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(float(value) * 1_000_000)
        moment = datetime.fromisoformat(str(value).replace(" UTC", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if kind == "JSON":
        return value if isinstance(value, str) else json.dumps(value)
    return str(value)


def _stored(field: dict[str, Any], value: Any) -> Any:
    """A Python value as SQLite keeps it (booleans as 0/1)."""
    return int(value) if isinstance(value, bool) else value


def _cell(field: dict[str, Any], value: Any, use_int64: bool) -> Any:
    """A stored value as BigQuery answers it in ``rows[].f[].v``: a string, or null."""
    if value is None:
        return None
    kind = str(field.get("type", "STRING")).upper()
    if kind == "TIMESTAMP":
        return str(value) if use_int64 else repr(value / 1_000_000)
    if kind in ("BOOLEAN", "BOOL"):
        return "true" if value else "false"
    return str(value)


def _shown(field: dict[str, Any], value: Any) -> Any:
    kind = str(field.get("type", "STRING")).upper()
    if value is None:
        return None
    if kind == "TIMESTAMP":
        return datetime.fromtimestamp(value / 1_000_000, UTC).isoformat().replace("+00:00", "Z")
    if kind in ("BOOLEAN", "BOOL"):
        return bool(value)
    if kind == "JSON":
        return json.loads(value)
    return value


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
