from interlink.hookspecs import hookimpl
from interlink_test_broken._base import MANIFEST, Checking


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(Checking, {**MANIFEST, "service": "Bad Service!", "capabilities": ["teleport"]})
