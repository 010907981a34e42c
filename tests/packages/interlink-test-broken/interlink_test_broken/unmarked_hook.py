from interlink_test_broken._base import MANIFEST, Checking


def register_connectors(register):  # type: ignore[no-untyped-def]  # forgot @hookimpl: never called
    register(Checking, {**MANIFEST, "service": "unmarked"})
