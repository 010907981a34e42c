"""Every error as problem+json (RFC 9457); validation errors list ``{pointer, rule, message}``.

Malformed JSON is a 400; a well-formed body that breaks a rule is a 422. Nothing reaches the caller as
a bare 500 with internals: an unexpected error is logged and answered with a generic problem.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from interlink.api.schemas import Problem
from interlink.errors import ConflictError, InvalidInputError, NotFoundError
from interlink.manifest import FieldError

__all__ = ["EXCEPTION_HANDLERS", "problem", "problem_responses"]

log = logging.getLogger("interlink.api")

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [e.as_dict() for e in errors]
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json answers a route can give (401 and 422 on every ``/v1`` route)."""
    return {
        status: ResponseSpec(data_container=Problem, description=_TITLES[status], media_type=PROBLEM_JSON)
        for status in sorted({401, 422, *statuses})
    }


def _key_to_pointer(key: str) -> str:
    """``synchronizations[0].eventType`` → ``/synchronizations/0/eventType``."""
    parts = [p for p in re.split(r"[.\[\]]", key) if p]
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _field_error(item: dict[str, Any]) -> FieldError:
    message = str(item.get("message", "invalid value"))
    key = str(item.get("key") or "")
    if item.get("source") == "body" and (key == "data" or key.startswith("data.")):
        key = key[len("data") :]  # Litestar names the whole body after the handler's ``data`` argument
    pointer = _key_to_pointer(key)
    if item.get("source") in ("query", "path", "header", "cookie"):
        pointer = "/" + key
    named = re.search(r"`([^`]*)`", message)
    if "unknown field" in message and named:
        return FieldError(
            f"{pointer}/{named.group(1)}", "additionalProperties", f"'{named.group(1)}' is not a known field"
        )
    if "missing required field" in message and named:
        return FieldError(f"{pointer}/{named.group(1)}", "required", f"'{named.group(1)}' is required")
    rule = "type" if message.startswith("Expected `") and not re.search(r"[<>]=?|length", message) else "invalid"
    for marker, name in (
        (">=", "minimum"),
        ("<=", "maximum"),
        ("length >=", "minLength"),
        ("length <=", "maxLength"),
        (" > ", "exclusiveMinimum"),
        (" < ", "exclusiveMaximum"),
        ("match regex", "pattern"),
    ):
        if marker in message:
            rule = name
    field = pointer.rsplit("/", 1)[-1] or "body"
    return FieldError(pointer, rule, f"'{field}': {message}")


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    items = [i for i in extra if isinstance(i, dict)]
    if not items:
        return problem(400, f"the request body is not valid JSON: {exc.detail}")
    return problem(422, "the request breaks one or more rules", errors=[_field_error(i) for i in items])


def _on_bad_encoding(_: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return problem(400, f"the request body is not valid UTF-8 (byte {exc.start}): send JSON encoded as UTF-8")


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    headers = dict(exc.headers or {})
    return problem(exc.status_code, str(exc.detail), headers=headers or None)


def _on_invalid(_: Request[Any, Any, Any], exc: InvalidInputError) -> Response[dict[str, Any]]:
    return problem(422, "the request breaks one or more rules", errors=exc.errors)


def _on_not_found(_: Request[Any, Any, Any], exc: NotFoundError) -> Response[dict[str, Any]]:
    return problem(404, str(exc))


def _on_conflict(_: Request[Any, Any, Any], exc: ConflictError) -> Response[dict[str, Any]]:
    return problem(409, str(exc))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: _on_validation,
    HTTPException: _on_http,
    UnicodeDecodeError: _on_bad_encoding,
    InvalidInputError: _on_invalid,
    NotFoundError: _on_not_found,
    ConflictError: _on_conflict,
    Exception: _on_unexpected,
}
