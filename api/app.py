"""The Litestar application: routes, authentication, problem+json errors and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from interlink import __version__
from interlink.api.auth import TokenCache, provide_tenant, require_tenant
from interlink.api.controllers.checks import CheckController
from interlink.api.controllers.events import EventMonitorController, PublishController
from interlink.api.controllers.health import health
from interlink.api.controllers.hooks import HookController, HookLogController
from interlink.api.controllers.integrations import IntegrationController
from interlink.api.controllers.syncs import SyncController
from interlink.api.controllers.webhooks import WebhookController
from interlink.api.errors import EXCEPTION_HANDLERS
from interlink.runtime import Runtime, freeze_startup_objects

__all__ = ["create_app"]

MAX_BODY_BYTES = 5 * 1024 * 1024


def _provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def create_app(runtime: Runtime | None = None) -> Litestar:
    """Build the app around ``runtime``; without one, it starts from the environment at startup."""
    owned = runtime is None

    def _startup(app: Litestar) -> None:
        if app.state.get("runtime") is None:
            app.state.runtime = Runtime.start()
        if owned and app.state.runtime.pipeline.in_process:
            app.state.runtime.pipeline.start()  # the embedded default: deliveries run in this process
        if owned:  # a process of `interlink serve`, not an application that embeds this one
            freeze_startup_objects()

    def _shutdown(app: Litestar) -> None:
        if owned and app.state.get("runtime") is not None:
            app.state.runtime.close()

    v1 = Router(
        path="/",
        route_handlers=[
            IntegrationController,
            SyncController,
            CheckController,
            EventMonitorController,
            PublishController,
            HookLogController,
            WebhookController,
        ],
        guards=[require_tenant],
        dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
        security=[{"BearerAuth": []}],
    )
    openapi = OpenAPIConfig(
        title="Interlink",
        version=__version__,
        description="Connect third-party services: configure integrations, monitor and retry events.",
        path="/docs",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        components=Components(security_schemes={"BearerAuth": SecurityScheme(type="http", scheme="bearer")}),
    )
    state: dict[str, Any] = {"runtime": runtime, "token_cache": TokenCache()}
    return Litestar(
        route_handlers=[health, HookController, v1],  # hooks: the connector authenticates, not a tenant token
        dependencies={"runtime": Provide(_provide_runtime, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        openapi_config=openapi,
        state=State(state),
        request_max_body_size=MAX_BODY_BYTES,
    )
