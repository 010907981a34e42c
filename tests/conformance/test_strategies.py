"""The settings strategies cover the whole documented schema subset: what they call valid validates, and
each mutation is rejected at the pointer they name."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from interlink.manifest import Manifest
from interlink.testing import example_settings, invalid_settings, valid_settings
from interlink.testing.strategies import settings_mutations

EVERY_KEYWORD: dict[str, Any] = {
    "service": "every_keyword",
    "name": "Every keyword",
    "version": "1.0.0",
    "description": "A settings schema using every keyword of the supported subset.",
    "categories": ["testing"],
    "capabilities": [],
    "sync_events": [],
    "settings": {
        "type": "object",
        "properties": {
            "baseUrl": {"type": "string", "format": "uri"},
            "email": {"type": "string", "format": "email"},
            "since": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "accountId": {"type": "string", "format": "uuid"},
            "host": {"type": "string", "format": "hostname"},
            "apiKey": {"type": "string", "writeOnly": True, "pattern": "^sk_(live|test)_[A-Za-z0-9]{24}$"},
            "token": {"type": "string", "writeOnly": True, "minLength": 10, "maxLength": 40},
            "name": {"type": "string", "minLength": 1, "maxLength": 5},
            "region": {"enum": ["eu", "us"]},
            "mode": {"type": "string", "enum": ["fast", "safe"]},
            "kind": {"const": "v2"},
            "batchSize": {"type": "integer", "minimum": 1, "maximum": 500},
            "ratio": {"type": "number", "minimum": 0.5, "maximum": 2.5},
            "debug": {"type": "boolean"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                "minItems": 1,
                "maxItems": 3,
                "uniqueItems": True,
            },
            "ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
        },
        "required": ["baseUrl", "apiKey", "region", "tags"],
        "additionalProperties": False,
    },
}
MANIFEST = Manifest.from_dict(EVERY_KEYWORD)


@settings(max_examples=50, deadline=None)
@given(valid_settings(MANIFEST))
def test_valid_settings_validate(value: dict[str, Any]) -> None:
    assert MANIFEST.validate_settings(value, pointer="") == []


@settings(max_examples=100, deadline=None)
@given(invalid_settings(MANIFEST))
def test_invalid_settings_are_rejected_at_their_pointer(case: tuple[dict[str, Any], str]) -> None:
    value, pointer = case
    errors = MANIFEST.validate_settings(value, pointer="")
    assert any(e.pointer == pointer or e.pointer.startswith(pointer + "/") for e in errors), (pointer, errors)


def test_every_rule_has_a_mutation() -> None:
    rules = {m.rule for m in settings_mutations(MANIFEST)}
    assert rules == {
        "required", "type", "const", "enum", "format", "pattern", "minLength", "maxLength",
        "minimum", "maximum", "minItems", "maxItems", "uniqueItems", "additionalProperties",
    }  # fmt: skip


@settings(max_examples=2, deadline=None)
@given(st.data())
def test_each_mutation_is_rejected(data: st.DataObject) -> None:
    from interlink.testing.strategies import mutated_settings

    for mutation in settings_mutations(MANIFEST):
        value, pointer = data.draw(mutated_settings(MANIFEST, mutation), label=mutation.description)
        errors = MANIFEST.validate_settings(value, pointer="")
        assert any(e.pointer == pointer or e.pointer.startswith(pointer + "/") for e in errors), mutation


def test_example_settings_are_complete_valid_deterministic_and_their_secrets_distinctive() -> None:
    example = example_settings(MANIFEST)
    assert set(example) == set(EVERY_KEYWORD["settings"]["properties"])
    assert MANIFEST.validate_settings(example) == []
    assert example_settings(MANIFEST) == example
    assert example["token"].startswith("conformance-secret-token-")
    assert len(set(example["apiKey"])) >= 4
