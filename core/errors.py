"""Errors the core raises toward its callers (the API maps each to one HTTP status)."""

from __future__ import annotations

from interlink.manifest import FieldError

__all__ = ["ConflictError", "InvalidInputError", "NotFoundError"]


class InvalidInputError(ValueError):
    """The input breaks one or more rules; ``errors`` lists each with its JSON pointer."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.pointer}: {e.message}" for e in errors))
        self.errors = errors


class NotFoundError(LookupError):
    """No such resource for this tenant (another tenant's resource is not found either)."""


class ConflictError(RuntimeError):
    """The resource is in a state that does not allow the operation."""
