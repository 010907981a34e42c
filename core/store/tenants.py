"""Tenants and their API tokens; a token is shown once and stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from interlink.ids import new_id
from interlink.store.tables import tenants

__all__ = ["Tenant", "TenantExistsError", "create_tenant", "hash_token", "list_tenants", "tenant_by_token"]


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: datetime


class TenantExistsError(ValueError):
    """A tenant of that name exists already."""


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is a safe, fast lookup key."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_tenant(conn: sa.Connection, name: str) -> tuple[Tenant, str]:
    """Create a tenant and return it with its token, which is not stored and cannot be shown again."""
    if conn.execute(sa.select(tenants.c.id).where(tenants.c.name == name)).first() is not None:
        raise TenantExistsError(f"a tenant named '{name}' exists already")
    token = "il_" + secrets.token_urlsafe(32)
    tenant = Tenant(id=new_id("tnt"), name=name, created_at=datetime.now(UTC))
    conn.execute(
        tenants.insert().values(id=tenant.id, name=name, token_hash=hash_token(token), created_at=tenant.created_at)
    )
    return tenant, token


def list_tenants(conn: sa.Connection) -> list[Tenant]:
    rows = conn.execute(sa.select(tenants.c.id, tenants.c.name, tenants.c.created_at).order_by(tenants.c.id))
    return [Tenant(id=r.id, name=r.name, created_at=r.created_at) for r in rows]


def tenant_by_token(conn: sa.Connection, token: str) -> Tenant | None:
    row = conn.execute(
        sa.select(tenants.c.id, tenants.c.name, tenants.c.created_at).where(tenants.c.token_hash == hash_token(token))
    ).first()
    return None if row is None else Tenant(id=row.id, name=row.name, created_at=row.created_at)
