"""aiohttp middlewares: bearer-token auth for the API and error → JSON response mapping.

Domain errors carry an ``error_id`` and never an HTTP status; the mapping lives here, once.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from callserver.errors import CallserverError

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/healthz", "/metrics", "/static/", "/favicon")
PUBLIC_EXACT = ("/", "/board")

# error_id suffix/prefix -> status; anything else a CallserverError says is 400 (caller's input)
STATUS_BY_ERROR_ID: dict[str, int] = {
    "not-found": 404,
    "conflict": 409,
    "unavailable": 503,
    "timeout": 504,
}


def _status_for(error: CallserverError) -> int:
    for key, status in STATUS_BY_ERROR_ID.items():
        if key in error.error_id:
            return status
    return 400


def json_error(status: int, error_id: str, message: str, **details: object) -> web.Response:
    body = {"error_id": error_id, "message": message, "details": details}
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


def token_from_request(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    # browsers cannot set headers on a WebSocket: allow ?token= there only
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("token", "")
    return ""


def auth_middleware(api_token: str) -> Middleware:
    """Every path except the public ones needs ``Authorization: Bearer <api_token>``."""
    expected = api_token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        given = token_from_request(request).encode()
        if not expected or not hmac.compare_digest(given, expected):
            return json_error(401, "unauthorized", "missing or wrong bearer token")
        return await handler(request)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, "http-error", exc.reason)
    except json.JSONDecodeError as exc:
        return json_error(400, "bad-json", f"request body is not valid JSON: {exc.msg}")
    except CallserverError as exc:
        if exc.error_id.startswith(("store-", "live-state")):
            # the database's own text (SQL, constraint names) is for the log, not the client
            log.warning("%s %s: %s", request.method, request.path, exc)
            status = 503 if exc.error_id in ("store-unavailable", "store-timeout") else 500
            return json_error(status, exc.error_id, "storage error; see the server log")
        return json_error(_status_for(exc), exc.error_id, exc.message, **exc.details)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal-error", "internal error; see the server log")
