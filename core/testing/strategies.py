"""Hypothesis strategies for integration settings, drawn from a manifest's settings schema.

They cover the documented subset of JSON Schema that manifests may use (a flat object of scalar and
scalar-array properties; see ``manifests/meta-schema.json``), so they do not need
``hypothesis-jsonschema`` (draft 7 only, and broken with current hypothesis releases).

* :func:`valid_settings` draws settings the manifest accepts;
* :func:`invalid_settings` draws ``(settings, pointer)``: valid settings with one mutation, and the JSON
  pointer (below the settings object) where validation must report it;
* :func:`settings_mutations` lists every mutation a schema allows, for checks that try each one;
* :func:`example_settings` is one deterministic, complete example whose secret values are distinctive.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from hypothesis import HealthCheck, Phase, find
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from interlink.manifest import Manifest

__all__ = [
    "Mutation",
    "example_settings",
    "invalid_settings",
    "property_strategy",
    "settings_mutations",
    "valid_settings",
]

_TEXT = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
"""Printable ASCII without space: settings often end up in HTTP headers."""

_FORMATS: dict[str, st.SearchStrategy[str]] = {
    "uri": st.from_regex(r"https://[a-z][a-z0-9]{0,9}\.example\.com(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    "email": st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.example\.com", fullmatch=True),
    "date-time": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    "date": st.dates().map(lambda d: d.isoformat()),
    "uuid": st.uuids().map(str),
    "hostname": st.from_regex(r"[a-z][a-z0-9]{0,9}(\.[a-z][a-z0-9]{0,9}){0,3}", fullmatch=True),
}

_BAD_FORMATS = {
    "uri": "not a uri",
    "email": "no-at-sign",
    "date-time": "yesterday",
    "date": "2025-13-45",
    "uuid": "not-a-uuid",
    "hostname": "bad host!",
}

_WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "not-a-number",
    "number": "not-a-number",
    "boolean": "true",
    "array": "not-an-array",
}

_PATTERN_BREAKERS = ("", " ", "!", "~", "0", "a", "A", "_", "-", "conformance value", "\u00e9\u00e9")

_DROP = object()
"""A mutation value meaning: remove the key."""


@dataclass(frozen=True)
class Mutation:
    """One way to break settings: set ``key`` to a value from ``values`` (or drop it), reported at ``pointer``."""

    key: str
    rule: str
    description: str
    values: st.SearchStrategy[Any]

    @property
    def pointer(self) -> str:
        return "/" + self.key.replace("~", "~0").replace("/", "~1")


def _schema(manifest: Manifest) -> tuple[Mapping[str, Any], list[str]]:
    schema = manifest.settings_schema
    return schema.get("properties", {}), list(schema.get("required", []))


@cache
def _validator(schema_json: str) -> Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _valid_for(prop: Mapping[str, Any]) -> Validator:
    return _validator(json.dumps(prop, sort_keys=True))


def _string(prop: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low, high = prop.get("minLength", 0), prop.get("maxLength")
    if "format" in prop:
        base = _FORMATS[prop["format"]]
    elif "pattern" in prop:
        base = st.from_regex(prop["pattern"], fullmatch=True)
    else:
        return st.text(_TEXT, min_size=low, max_size=high)
    return base.filter(lambda s: len(s) >= low and (high is None or len(s) <= high))


def _scalar(prop: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    kind = prop.get("type")
    if "const" in prop:
        return st.just(prop["const"])
    if "enum" in prop:
        return st.sampled_from(list(prop["enum"]))
    if kind == "string":
        return _string(prop)
    if kind == "integer":
        low = math.ceil(prop["minimum"]) if "minimum" in prop else None
        high = math.floor(prop["maximum"]) if "maximum" in prop else None
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        return st.floats(
            min_value=prop.get("minimum"), max_value=prop.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "boolean":
        return st.booleans()
    return st.one_of(st.booleans(), st.integers(), st.text(_TEXT, max_size=10))


def property_strategy(prop: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values one property of the settings schema accepts."""
    if prop.get("type") == "array" and "const" not in prop and "enum" not in prop:
        items = _scalar(prop.get("items", {}))
        strategy: st.SearchStrategy[Any] = st.lists(
            items,
            min_size=prop.get("minItems", 0),
            max_size=prop.get("maxItems", max(prop.get("minItems", 0), 5)),
            unique=bool(prop.get("uniqueItems")),
        )
    else:
        strategy = _scalar(prop)
    return strategy.filter(_valid_for(prop).is_valid)


def valid_settings(manifest: Manifest) -> st.SearchStrategy[dict[str, Any]]:
    """Settings the manifest accepts: every required key, and any of the optional ones."""
    props, required = _schema(manifest)
    return st.fixed_dictionaries(
        {key: property_strategy(props[key]) for key in required if key in props},
        optional={key: property_strategy(prop) for key, prop in props.items() if key not in required},
    )


def _not_in(values: list[Any], candidates: list[Any]) -> Any:
    for candidate in candidates:
        if all(json.dumps(candidate) != json.dumps(v) for v in values):
            return candidate
    return None


def _property_mutations(key: str, prop: Mapping[str, Any]) -> list[Mutation]:
    found: list[Mutation] = []

    def add(rule: str, description: str, values: st.SearchStrategy[Any]) -> None:
        found.append(Mutation(key, rule, f"'{key}' {description}", values))

    kind = prop.get("type")
    if kind in _WRONG_TYPE:
        add("type", f"of the wrong type (not {kind})", st.just(_WRONG_TYPE[kind]))
    if "const" in prop:
        add("const", "different from its const", st.just(_not_in([prop["const"]], ["conformance-other", 987654321])))
    if "enum" in prop:
        outside = _not_in(list(prop["enum"]), ["conformance-not-in-enum", 987654321, False, None])
        add("enum", "outside its enum", st.just(outside))
    if "format" in prop and kind in (None, "string"):
        add("format", f"not in {prop['format']} format", st.just(_BAD_FORMATS[prop["format"]]))
    if "pattern" in prop:
        breakers = [s for s in _PATTERN_BREAKERS if re.search(prop["pattern"], s) is None]
        if breakers:
            add("pattern", "not matching its pattern", st.sampled_from(breakers))
    if prop.get("minLength", 0) > 0:
        add("minLength", "shorter than minLength", st.just("x" * (prop["minLength"] - 1)))
    if "maxLength" in prop:
        add("maxLength", "longer than maxLength", st.just("x" * (prop["maxLength"] + 1)))
    if "minimum" in prop and kind in ("integer", "number"):
        add("minimum", "below its minimum", st.just(math.ceil(prop["minimum"]) - 1))
    if "maximum" in prop and kind in ("integer", "number"):
        add("maximum", "above its maximum", st.just(math.floor(prop["maximum"]) + 1))
    if kind == "array":
        items = property_strategy(prop.get("items", {}))
        item_type = prop.get("items", {}).get("type")
        if item_type in _WRONG_TYPE:
            add("type", f"with an item of the wrong type (not {item_type})", st.just([_WRONG_TYPE[item_type]]))
        if prop.get("minItems", 0) > 0:
            add("minItems", "with fewer than minItems items", st.lists(items, max_size=prop["minItems"] - 1))
        if "maxItems" in prop:
            count = prop["maxItems"] + 1
            add("maxItems", "with more than maxItems items", st.lists(items, min_size=count, max_size=count))
        if prop.get("uniqueItems"):
            add("uniqueItems", "with a repeated item", items.map(lambda v: [v, v]))
    return found


def settings_mutations(manifest: Manifest) -> list[Mutation]:
    """Every single-rule mutation the settings schema allows, each with the pointer it must be reported at."""
    props, required = _schema(manifest)
    found = [Mutation(key, "required", f"required '{key}' missing", st.just(_DROP)) for key in required]
    for key, prop in props.items():
        found.extend(_property_mutations(key, prop))
    extra = "conformanceUnknownSetting"
    while extra in props:
        extra += "X"
    found.append(Mutation(extra, "additionalProperties", f"an unknown setting '{extra}'", st.just("x")))
    return found


def _apply(settings: dict[str, Any], mutation: Mutation, value: Any) -> tuple[dict[str, Any], str]:
    mutated = dict(settings)
    if value is _DROP:
        mutated.pop(mutation.key, None)
    else:
        mutated[mutation.key] = value
    return mutated, mutation.pointer


def mutated_settings(manifest: Manifest, mutation: Mutation) -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    """Valid settings broken by ``mutation``, with the pointer validation must report."""
    return st.tuples(valid_settings(manifest), mutation.values).map(lambda pair: _apply(pair[0], mutation, pair[1]))


def invalid_settings(manifest: Manifest) -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    """``(settings, pointer)``: valid settings with one rule broken, and where the error must point.

    The pointer is relative to the settings object (``"/apiKey"``); errors about an array item may
    point below it (``"/tags/0"``).
    """
    return st.one_of([mutated_settings(manifest, m) for m in settings_mutations(manifest)])


def _secret_value(key: str, prop: Mapping[str, Any]) -> str | None:
    """A distinctive value for a secret string, sized to its bounds; ``None`` when its rules refuse it."""
    value = f"conformance-secret-{key}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    value = value.ljust(prop.get("minLength", 0), "x")
    if "maxLength" in prop:
        value = value[: prop["maxLength"]]
    return value if _valid_for(prop).is_valid(value) else None


def example_settings(manifest: Manifest) -> dict[str, Any]:
    """One complete settings example (every property present, each its simplest value), the same on every call.

    Secret (``writeOnly``) values are long and distinctive, so a leak of one can be found in logs.
    """
    props, _ = _schema(manifest)
    config = hypothesis_settings(
        database=None,
        derandomize=True,
        max_examples=500,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    example: dict[str, Any] = {}
    for key, prop in props.items():
        secret = _secret_value(key, prop) if prop.get("writeOnly") else None
        if secret is not None:
            example[key] = secret
            continue
        strategy = property_strategy(prop)
        try:
            wanted = _distinctive if prop.get("writeOnly") else _anything
            example[key] = find(strategy, wanted, settings=config)
        except HypothesisException:
            example[key] = find(strategy, _anything, settings=config)
    return example


def _anything(value: Any) -> bool:
    return True


def _distinctive(value: Any) -> bool:
    text = str(value)
    return len(text) >= 8 and len(set(text)) >= 4
