"""Pull syncs of an integration: trigger one, watch its runs, cancel one."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from interlink import syncs as service
from interlink.api import schemas
from interlink.api.errors import problem_responses
from interlink.runtime import Runtime
from interlink.store.tenants import Tenant

__all__ = ["SyncController"]

IntegrationId = Annotated[
    str, PathParameter(description="The integration's id", examples=[Example(value=schemas.EXAMPLE_ID)])
]
SyncId = Annotated[
    str, PathParameter(description="The sync run's id", examples=[Example(value=schemas.EXAMPLE_SYNC_ID)])
]
PageParam = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, from 1")]
LimitParam = Annotated[int, QueryParameter(ge=1, le=500, description="Runs per page, 1 to 500")]


class SyncController(Controller):
    """``/v1/integrations/{id}/sync`` and ``/syncs``: pull a vendor's records on demand, and follow the runs."""

    path = "/v1/integrations/{integration_id:str}"
    tags = ["syncs"]

    @post(
        "/sync",
        operation_id="triggerSync",
        status_code=HTTP_202_ACCEPTED,
        responses=problem_responses(404, 409),
        sync_to_thread=True,
        summary="Trigger a sync",
    )
    def trigger(
        self, runtime: NamedDependency[Runtime], tenant: NamedDependency[Tenant], integration_id: IntegrationId
    ) -> schemas.SyncTriggered:
        """Queue a sync and answer at once; while one is queued or running, its ``sync_id`` is returned.

        Watch it with ``GET .../syncs/{sync_id}`` or the integration's ``status`` (``syncing``, then
        ``connected`` or ``error``). A disabled integration, or a connector that cannot sync, answers 409.
        """
        sync_id, _new = service.trigger_sync(runtime, tenant.id, integration_id)
        return schemas.SyncTriggered(status="ok", sync_id=sync_id)

    @get(
        "/syncs",
        operation_id="listSyncs",
        responses=problem_responses(404),
        sync_to_thread=True,
        summary="List sync runs",
    )
    def list_runs(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        integration_id: IntegrationId,
        page: PageParam = 1,
        limit: LimitParam = 50,
    ) -> schemas.SyncRunPage:
        """The integration's sync runs, newest first, paginated."""
        items, has_more = service.list_syncs(runtime, tenant.id, integration_id, page=page, limit=limit)
        return schemas.SyncRunPage(
            syncs=[msgspec.convert(i, schemas.SyncRun) for i in items], page=page, limit=limit, has_more=has_more
        )

    @get(
        "/syncs/{sync_id:str}",
        operation_id="getSync",
        responses=problem_responses(404),
        sync_to_thread=True,
        summary="Get a sync run",
    )
    def get_run(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        integration_id: IntegrationId,
        sync_id: SyncId,
    ) -> schemas.SyncRunEnvelope:
        """One run: status, records read, when it started and finished, and the error of a failed run."""
        run = service.get_sync(runtime, tenant.id, integration_id, sync_id)
        return schemas.SyncRunEnvelope(sync=msgspec.convert(run, schemas.SyncRun))

    @post(
        "/syncs/{sync_id:str}/cancel",
        operation_id="cancelSync",
        status_code=HTTP_200_OK,
        responses=problem_responses(404, 409),
        sync_to_thread=True,
        summary="Cancel a sync run",
    )
    def cancel(
        self,
        runtime: NamedDependency[Runtime],
        tenant: NamedDependency[Tenant],
        integration_id: IntegrationId,
        sync_id: SyncId,
    ) -> schemas.SyncRunEnvelope:
        """A queued run is cancelled at once; a running one stops at its next checkpoint (``cancel_requested``).

        What it committed before stays, and the next sync goes on from there. A finished run answers 409.
        """
        run = service.cancel_sync(runtime, tenant.id, integration_id, sync_id)
        return schemas.SyncRunEnvelope(sync=msgspec.convert(run, schemas.SyncRun))
