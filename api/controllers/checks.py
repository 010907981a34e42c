"""Checking an integration: does the vendor accept its settings right now?"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import PathParameter
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta, Struct

from interlink.api import schemas
from interlink.api.errors import problem_responses
from interlink.checks import check_integration_async
from interlink.runtime import Runtime
from interlink.store.tenants import Tenant

__all__ = ["CheckController", "IntegrationCheck"]

IntegrationId = Annotated[
    str, PathParameter(description="The integration's id", examples=[Example(value=schemas.EXAMPLE_ID)])
]


class IntegrationCheck(Struct):
    """The outcome of a check: ``ok``, and what the connector said (secrets masked)."""

    ok: Annotated[bool, Meta(examples=[False])]
    message: Annotated[str, Meta(examples=["Invalid API key — update settings.apiKey"])]


class CheckController(Controller):
    """``/v1/integrations/{id}/check``: one cheap authenticated call to the vendor with the stored settings."""

    path = "/v1/integrations/{integration_id:str}"
    tags = ["integrations"]

    @post(
        "/check",
        operation_id="checkIntegration",
        status_code=HTTP_200_OK,
        responses=problem_responses(404, 409),
        summary="Check an integration's settings",
    )
    async def check(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> IntegrationCheck:
        """Run the connector's ``check`` and answer ``200`` with ``ok`` and a message, whatever the vendor said.

        Bad credentials, a vendor that is down or slow (no answer within 20 s) and a faulty connector are
        ``ok: false`` with a message naming what to fix; the integration's status is not changed. A
        connector without ``check`` answers 409.
        """
        outcome = await check_integration_async(runtime, tenant.id, integration_id)
        return IntegrationCheck(ok=outcome.ok, message=outcome.message)
