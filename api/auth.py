"""Bearer-token authentication: every ``/v1`` route resolves the caller's tenant or answers 401."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from interlink.runtime import Runtime
from interlink.store.tenants import Tenant, hash_token, tenant_by_token

__all__ = ["TokenCache", "bearer_token", "provide_tenant", "require_tenant"]


class TokenCache:
    """Valid tokens seen lately, so a busy client costs no database lookup per request.

    Only valid tokens are kept (by their hash, never in clear), for ``ttl`` seconds; a bad token is looked
    up every time. Bounded: when full, it starts over.
    """

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[Tenant, float]] = {}

    def get(self, token: str) -> Tenant | None:
        entry = self._entries.get(hash_token(token))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, tenant: Tenant) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[hash_token(token)] = (tenant, time.monotonic() + self._ttl)


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="interlink"'}


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header's value; ``None`` if it is not one."""
    scheme, _sep, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def require_tenant(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: find the tenant whose token is in ``Authorization: Bearer <token>``.

    A coroutine, so that a cached token costs no thread hand-off (Litestar runs a plain-function guard in
    a worker thread on every request); only a lookup in the database goes to a thread.
    """
    token = bearer_token(connection.headers.get("authorization", ""))
    if token is None:
        raise NotAuthorizedException("send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    cache: TokenCache = connection.app.state.token_cache
    tenant = cache.get(token)
    if tenant is None:
        runtime: Runtime = connection.app.state.runtime
        tenant = await anyio.to_thread.run_sync(_lookup, runtime, token)
        if tenant is not None:
            cache.put(token, tenant)
    if tenant is None:
        raise NotAuthorizedException("the bearer token is not valid", headers=_CHALLENGE)
    connection.state.tenant = tenant


def _lookup(runtime: Runtime, token: str) -> Tenant | None:
    with runtime.engine.connect() as conn:
        return tenant_by_token(conn, token)


def provide_tenant(request: ASGIConnection[Any, Any, Any, Any]) -> Tenant:
    tenant: Tenant = request.state.tenant
    return tenant
