"""The aiohttp application: routes of every component behind one auth and error layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from aiohttp import web

from callserver.metrics import CONTENT_TYPE, Metrics
from callserver.web.health import HealthCheck, health_routes
from callserver.web.middlewares import auth_middleware, error_middleware

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY = 1024 * 1024


def build_web_app(
    *,
    api_token: str,
    health_checks: Mapping[str, HealthCheck],
    metrics: Metrics,
    routes: Iterable[web.RouteDef] = (),
    on_shutdown: Iterable[Callable[[], Awaitable[None]]] = (),
) -> web.Application:
    """Build the app. ``routes`` come from the components (calls, live, crm, routing …);
    ``on_shutdown`` hooks run when the server stops (e.g. closing live WebSockets)."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware(api_token)],
        client_max_size=MAX_BODY,
    )

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def board(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "board.html")

    app.add_routes(health_routes(health_checks))
    app.add_routes(
        [web.get("/metrics", metrics_view), web.get("/", board), web.get("/board", board)]
    )
    app.add_routes(list(routes))
    app.router.add_static("/static/", STATIC_DIR)
    for hook in on_shutdown:
        app.on_shutdown.append(lambda _app, hook=hook: hook())  # type: ignore[misc]
    return app
