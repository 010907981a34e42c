"""Bearer-token authentication: every ``/v1`` route resolves the caller's tenant or answers 401."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from interlink.runtime import Runtime
from interlink.store.tenants import Tenant, tenant_by_token

__all__ = ["provide_tenant", "require_tenant"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="interlink"'}


def require_tenant(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: find the tenant whose token is in ``Authorization: Bearer <token>``."""
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    runtime: Runtime = connection.app.state.runtime
    with runtime.engine.connect() as conn:
        tenant = tenant_by_token(conn, token.strip())
    if tenant is None:
        raise NotAuthorizedException("the bearer token is not valid", headers=_CHALLENGE)
    connection.state.tenant = tenant


def provide_tenant(request: ASGIConnection[Any, Any, Any, Any]) -> Tenant:
    tenant: Tenant = request.state.tenant
    return tenant
