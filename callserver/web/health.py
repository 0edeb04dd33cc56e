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
CHECK_TIMEOUT = 0.8
"""Seconds one component's check may take; all run at once, so ``/healthz`` answers within
about this long (≤ 1 s) whatever hangs. A check that runs out of time is reported
``degraded`` and *slow*, with the event loop's lag: a busy process is not an unreachable
server."""
LOOP_LAG_DEGRADED = 0.5
"""Seconds of event loop lag beyond which ``event_loop`` is reported degraded."""


async def _run(name: str, check: HealthCheck, lag: Callable[[], float]) -> ComponentHealth:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check()
    except TimeoutError:
        detail = (f"{name}: no answer within {CHECK_TIMEOUT} s (slow, not necessarily down;"
                  f" event loop lag {lag() * 1000:.0f} ms)")  # fmt: skip
        log.warning("health check %s", detail)
        return ComponentHealth("degraded", detail)
    except Exception as exc:
        log.warning("health check %s failed: %r", name, exc)
        return ComponentHealth("down", type(exc).__name__)


async def _loop_lag() -> float:
    """Seconds a task ready now waits for its turn on the event loop (one scheduling round)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(0)
    return loop.time() - started


async def collect(checks: Mapping[str, HealthCheck]) -> dict[str, object]:
    """Run every check at once, each bounded by ``CHECK_TIMEOUT`` s; adds ``event_loop``
    (its lag, ``lag_ms``) so a slow answer can be told from a down component."""
    names = list(checks)
    lag_task = asyncio.ensure_future(_loop_lag())
    results = await asyncio.gather(
        *(_run(n, checks[n], lambda: lag_task.result() if lag_task.done() else CHECK_TIMEOUT)
          for n in names)
    )  # fmt: skip
    lag = await lag_task
    components = {
        n: {"status": r.status, "detail": r.detail, **r.extra}
        for n, r in zip(names, results, strict=True)
    }
    loop_status = "ok" if lag < LOOP_LAG_DEGRADED else "degraded"
    components["event_loop"] = {"status": loop_status, "detail": "", "lag_ms": round(lag * 1e3, 1)}
    statuses = [r.status for r in results] + [loop_status]
    overall = "ok" if all(s in ("ok", "disabled") for s in statuses) else "degraded"
    return {"status": overall, "components": components}


def health_routes(checks: Mapping[str, HealthCheck]) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        body = await collect(checks)
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    return [web.get("/healthz", healthz)]
