"""Manifests: loading them against the meta-schema, and validating integration settings.

Every error is collected at once, each with its JSON pointer, the rule it broke and a message that
says how to fix it. No message quotes the offending value, so a secret can never leak through one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator

__all__ = [
    "FieldError",
    "Manifest",
    "ManifestError",
    "SyncEvent",
    "builtin_manifest_path",
    "load_manifest",
    "meta_schema",
]


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: where (JSON pointer), which rule, and how to fix it."""

    pointer: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "rule": self.rule, "message": self.message}


class ManifestError(ValueError):
    """A manifest that does not satisfy the meta-schema; ``errors`` lists every problem."""

    def __init__(self, source: str, errors: list[FieldError]) -> None:
        details = "; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors)
        super().__init__(f"invalid manifest {source}: {details}")
        self.errors = errors


@dataclass(frozen=True)
class SyncEvent:
    """An event type a connector handles, and which way it flows."""

    event_type: str
    direction: str
    description: str


@dataclass(frozen=True)
class Manifest:
    """A validated connector manifest. ``raw`` is the document as published in the catalogue."""

    service: str
    name: str
    version: str
    description: str
    categories: tuple[str, ...]
    capabilities: frozenset[str]
    settings_schema: Mapping[str, Any]
    sync_events: tuple[SyncEvent, ...]
    accepts_any_event: bool
    default_sync_interval: int | None
    docs_url: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Manifest:
        """Validate ``data`` against the meta-schema and build the manifest; raise :class:`ManifestError`."""
        errors = [_field_error(e, "") for e in _meta_validator().iter_errors(data)]
        if not errors:
            errors = _check_settings_schema(data["settings"])
        if errors:
            raise ManifestError(source, errors)
        return cls(
            service=data["service"],
            name=data["name"],
            version=data["version"],
            description=data["description"],
            categories=tuple(data["categories"]),
            capabilities=frozenset(data["capabilities"]),
            settings_schema=data["settings"],
            sync_events=tuple(SyncEvent(**e) for e in data["sync_events"]),
            accepts_any_event=bool(data.get("accepts_any_event", False)),
            default_sync_interval=data.get("default_sync_interval"),
            docs_url=data.get("docs_url"),
            raw=data,
        )

    @property
    def secret_keys(self) -> frozenset[str]:
        """Settings keys marked ``writeOnly``: encrypted at rest, masked in every response and log."""
        props = self.settings_schema.get("properties", {})
        return frozenset(k for k, p in props.items() if p.get("writeOnly"))

    def accepts_event(self, event_type: str) -> bool:
        """Whether an integration of this connector may enable a synchronization for ``event_type``."""
        return self.accepts_any_event or any(e.event_type == event_type for e in self.sync_events)

    def delivers(self, event_type: str) -> bool:
        """Whether the connector pushes ``event_type`` to its vendor (fan-out sends it there)."""
        if "deliver" not in self.capabilities:
            return False
        return self.accepts_any_event or any(
            e.event_type == event_type and e.direction == "outbound" for e in self.sync_events
        )

    def validate_settings(self, settings: Any, pointer: str = "/settings") -> list[FieldError]:
        """Every problem with ``settings``, each pointing below ``pointer``; empty when valid."""
        validator = _settings_validator(json.dumps(self.settings_schema, sort_keys=True))
        errors = [_field_error(e, pointer) for e in validator.iter_errors(settings)]
        return sorted(errors, key=lambda e: (e.pointer, e.rule))


def load_manifest(source: str | Path | Mapping[str, Any]) -> Manifest:
    """Load a manifest from a JSON file path or a dict, validated against the meta-schema."""
    if isinstance(source, Mapping):
        return Manifest.from_dict(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(str(path), [FieldError("", "json", f"cannot read manifest: {exc}")]) from None
    return Manifest.from_dict(data, source=str(path))


def builtin_manifest_path(service: str) -> Path:
    """The manifest file of a built-in connector, shipped as package data."""
    return Path(str(resources.files("interlink.manifests").joinpath(f"{service}.json")))


@cache
def meta_schema() -> dict[str, Any]:
    """The manifest meta-schema that ships with the core."""
    text = resources.files("interlink.manifests").joinpath("meta-schema.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@cache
def _meta_validator() -> Validator:
    return Draft202012Validator(meta_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _settings_validator(schema_json: str) -> Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _check_settings_schema(schema: Mapping[str, Any]) -> list[FieldError]:
    """What the meta-schema cannot say: required keys must be declared, and the schema must compile."""
    props = schema.get("properties", {})
    errors = [
        FieldError(f"/settings/required/{i}", "required", f"required setting '{key}' is not in properties")
        for i, key in enumerate(schema.get("required", []))
        if key not in props
    ]
    for key, prop in props.items():
        checker = Draft202012Validator.FORMAT_CHECKER
        if "default" in prop and not Draft202012Validator(prop, format_checker=checker).is_valid(prop["default"]):
            errors.append(FieldError(f"/settings/properties/{key}/default", "default", "default breaks its own schema"))
    return errors


def _escape(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(base: str, path: Iterable[Any]) -> str:
    return base + "".join("/" + _escape(p) for p in path)


_FORMAT_HINTS = {
    "uri": "an absolute URL such as https://example.com",
    "email": "an email address",
    "date-time": "an ISO 8601 date-time such as 2025-01-31T23:59:59Z",
    "date": "a date such as 2025-01-31",
    "uuid": "a UUID",
    "hostname": "a host name",
    "regex": "a valid regular expression",
}


def _field_error(error: ValidationError, base: str) -> FieldError:
    """Turn a jsonschema error into a FieldError whose message never quotes the value."""
    rule = str(error.validator)
    value = error.validator_value
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    name = "value" if not path else str(path[-1])
    if len(path) >= 2 and isinstance(path[-1], int):
        name = f"{path[-2]}[{path[-1]}]"
    if rule == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return FieldError(_pointer(base, [*path, missing]), rule, f"'{missing}' is required")
    if rule == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in (error.instance or {}) if k not in schema.get("properties", {})]
        extra = extras[0] if extras else "?"
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        noun = "setting" if base else "field"
        return FieldError(_pointer(base, [*path, extra]), rule, f"'{extra}' is not a known {noun}{hint}")
    messages = {
        "type": f"'{name}' must be of type {value}",
        "enum": f"'{name}' must be one of: {', '.join(map(str, value)) if isinstance(value, list) else value}",
        "const": f"'{name}' must be {value!r}",
        "format": f"'{name}' must be {_FORMAT_HINTS.get(str(value), f'in {value} format')}",
        "pattern": f"'{name}' must match the pattern {value}",
        "minLength": f"'{name}' must be at least {value} characters long",
        "maxLength": f"'{name}' must be at most {value} characters long",
        "minimum": f"'{name}' must be at least {value}",
        "maximum": f"'{name}' must be at most {value}",
        "minItems": f"'{name}' must have at least {value} items",
        "maxItems": f"'{name}' must have at most {value} items",
        "uniqueItems": f"'{name}' must not repeat items",
    }
    return FieldError(_pointer(base, path), rule, messages.get(rule, f"'{name}' breaks the '{rule}' rule"))
