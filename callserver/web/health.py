"""``GET /healthz``: one status per component (ami, ari, agi, database, redis …)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

log = logging.getLogger(__name__)

Status = Literal["ok", "down", "degraded", "disabled"]


@dataclass(frozen=True)
class ComponentHealth:
    status: Status
    detail: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)


HealthCheck = Callable[[], Awaitable[ComponentHealth]]
CHECK_TIMEOUT = 2.0
"""Seconds one component's check may take before it is reported down."""


async def _run(name: str, check: HealthCheck) -> ComponentHealth:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check()
    except TimeoutError:
        return ComponentHealth("down", f"health check timed out after {CHECK_TIMEOUT} s")
    except Exception as exc:
        log.warning("health check %s failed: %r", name, exc)
        return ComponentHealth("down", type(exc).__name__)


async def collect(checks: Mapping[str, HealthCheck]) -> dict[str, object]:
    names = list(checks)
    results = await asyncio.gather(*(_run(n, checks[n]) for n in names))
    components = {
        n: {"status": r.status, "detail": r.detail, **r.extra}
        for n, r in zip(names, results, strict=True)
    }
    overall = "ok" if all(r.status in ("ok", "disabled") for r in results) else "degraded"
    return {"status": overall, "components": components}


def health_routes(checks: Mapping[str, HealthCheck]) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        body = await collect(checks)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    return [web.get("/healthz", healthz)]
