from interlink.hookspecs import hookimpl
from interlink_test_broken._base import MANIFEST


class NotAConnector:
    pass


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(NotAConnector, {**MANIFEST, "service": "not_a_connector"})
