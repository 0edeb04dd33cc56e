"""The aiohttp application: routes of every component behind one auth and error layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

from aiohttp import web

from callserver.metrics import CONTENT_TYPE, Metrics
from callserver.web.auth import Authenticator
from callserver.web.health import HealthCheck, health_routes
from callserver.web.middlewares import (
    RequestDeadline,
    auth_middleware,
    error_middleware,
    text_guard_middleware,
)

MAX_BODY = 1024 * 1024
REQUEST_TIMEOUT = 30.0
"""Seconds a plain HTTP request may take, body upload included."""


def build_web_app(
    *,
    authenticators: Sequence[Authenticator],
    health_checks: Mapping[str, HealthCheck],
    metrics: Metrics,
    routes: Iterable[web.RouteDef] = (),
    public_paths: Iterable[str] = (),
    static: Iterable[tuple[str, Path]] = (),
    on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
    deadline: RequestDeadline | None = None,
) -> web.Application:
    """Build the app. ``routes`` come from the core and the plugins; ``public_paths`` are
    served without a principal; ``static`` is ``(prefix, folder)`` served under
    ``/static/<prefix>/``; ``on_shutdown`` hooks run when the server stops; ``deadline``
    bounds each plain HTTP request (``RequestDeadline``, default 30 s)."""
    deadline = deadline or RequestDeadline(REQUEST_TIMEOUT)
    app = web.Application(
        middlewares=[
            error_middleware,
            deadline.middleware,
            auth_middleware(authenticators, public_paths),
            text_guard_middleware,
        ],
        client_max_size=MAX_BODY,
    )

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.add_routes(health_routes(health_checks))
    app.add_routes([web.get("/metrics", metrics_view)])
    app.add_routes(list(routes))
    for prefix, folder in static:
        app.router.add_static(f"/static/{prefix}/", folder)
    for hook in on_shutdown:
        app.on_shutdown.append(lambda _app, hook=hook: hook())  # type: ignore[misc]
    return app
