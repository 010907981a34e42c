from interlink.connector import CheckResult, Connector, ConnectorContext

MANIFEST = {
    "service": "placeholder",
    "name": "Broken",
    "version": "0.0.1",
    "description": "A deliberately broken test connector.",
    "categories": [],
    "capabilities": ["check"],
    "settings": {"type": "object", "properties": {}},
    "sync_events": [],
}


class Checking(Connector):
    def check(self, ctx: ConnectorContext) -> CheckResult:
        return CheckResult(ok=True)
