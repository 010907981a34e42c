"""The publish benchmark's baseline: a bare Litestar app with one JSON POST endpoint."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post


@post("/v1/events", status_code=202)
async def accept(data: dict[str, Any]) -> dict[str, bool]:
    return {"accepted": True}


app = Litestar([accept])
