"""aiohttp middlewares: bearer-token auth for the API and the one error → JSON mapping.

Every error answer has the same body, whichever domain raised it::

    {"error_id": "routing-override-invalid", "message": "…", "details": {…}}

The status comes from the error class's ``category`` (``STATUS_BY_CATEGORY``), never from its
name. Answers ≥ 500, and errors that may carry library or database text (``public_message``),
never show that text: the client gets a generic message and an ``incident`` id that the server
log line carries too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Iterable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from callserver.core.text import text_problem
from callserver.errors import CallserverError, ErrorCategory
from callserver.logs import ALWAYS
from callserver.logs import escape_control as escape
from callserver.web.auth import PRINCIPAL, Authenticator

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/healthz", "/metrics", "/static/", "/favicon")

STATUS_BY_CATEGORY: dict[ErrorCategory, int] = {
    ErrorCategory.INVALID: 400,
    ErrorCategory.UNAUTHORIZED: 401,
    ErrorCategory.FORBIDDEN: 403,
    ErrorCategory.NOT_FOUND: 404,
    ErrorCategory.CONFLICT: 409,
    ErrorCategory.TOO_LARGE: 413,
    ErrorCategory.RATE_LIMITED: 429,
    ErrorCategory.INTERNAL: 500,
    ErrorCategory.UPSTREAM_REJECTED: 502,
    ErrorCategory.UNAVAILABLE: 503,
    ErrorCategory.TIMEOUT: 504,
}

GENERIC_MESSAGE: dict[ErrorCategory, str] = {
    ErrorCategory.INTERNAL: "internal error; see the server log",
    ErrorCategory.UPSTREAM_REJECTED: "a system callserver depends on refused the request",
    ErrorCategory.UNAVAILABLE: "a system callserver depends on is unavailable; try again later",
    ErrorCategory.TIMEOUT: "a system callserver depends on did not answer in time",
}


def status_for(error: CallserverError) -> int:
    return STATUS_BY_CATEGORY[error.category]


def json_error(status: int, error_id: str, message: str, **details: object) -> web.Response:
    body = {"error_id": error_id, "message": message, "details": details}
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


def error_response(error: CallserverError, request: web.Request) -> web.Response:
    """The answer for ``error`` raised while serving ``request`` (logs what clients don't see)."""
    status = status_for(error)
    if status < 500 and error.public_message is None:
        return json_error(status, error.error_id, error.message, **error.details)
    incident = secrets.token_hex(6)
    log.warning("%s %s: %s [incident %s]", request.method, escape(request.path),
                escape(str(error)), incident, extra=ALWAYS)  # fmt: skip
    message = error.public_message or GENERIC_MESSAGE.get(error.category, "error")
    return json_error(status, error.error_id, message, incident=incident)


def auth_middleware(
    authenticators: Sequence[Authenticator], public_paths: Iterable[str] = ()
) -> Middleware:
    """Every path except the public ones needs a principal: the first authenticator that
    recognises the request wins (``request[PRINCIPAL]``), else 401."""
    public = frozenset(public_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        for authenticate in authenticators:
            principal = await authenticate(request)
            if principal is not None:
                request[PRINCIPAL] = principal
                break
        path = request.path
        if path in public or path.startswith(PUBLIC_PREFIXES) or PRINCIPAL in request:
            return await handler(request)
        return json_error(401, "unauthorized", "log in, or send Authorization: Bearer <token>")

    return middleware


class RequestTimedOut(CallserverError):
    """A handler did not finish within the request deadline (a dependency too slow)."""

    error_id = "request-timeout"
    category = ErrorCategory.TIMEOUT


class RequestDeadline:
    """A middleware giving every plain HTTP request ``timeout`` seconds (WebSocket upgrades are
    long-lived and exempt). A client still sending its body when time is up (a slow-body
    *slowloris*) gets 408 and the connection closed; a slow handler gets the one error body
    (504). ``client_timeouts`` and ``handler_timeouts`` count them. Slow *headers* are cut by
    the server's ``keepalive_timeout`` (``callserver.app``), before any handler runs."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.client_timeouts = 0
        self.handler_timeouts = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                return await handler(request)
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own deadline, not ours: mapped like any other error
            if not request.content.is_eof():
                self.client_timeouts += 1
                response = json_error(408, "request-timeout",
                                      f"request body not received within {self.timeout:.0f} s")
                response.force_close()
                return response
            self.handler_timeouts += 1
            raise RequestTimedOut(message=f"{request.method} {escape(request.path)} took more "
                                  f"than {self.timeout:.0f} s", timeout=self.timeout) from None


class BadText(CallserverError):
    """A path or query parameter holds text no stored value can (NUL, a lone surrogate)."""

    error_id = "bad-parameter"
    category = ErrorCategory.INVALID


@web.middleware
async def text_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route's path and query parameters are refused with a 400 naming the parameter
    when they hold NUL or a lone surrogate, before a handler can pass them to PostgreSQL (which
    refuses them with an error that used to surface as a 5xx)."""
    for name, value in (*request.match_info.items(), *request.query.items()):
        if (problem := text_problem(name) or text_problem(value)) is not None:
            raise BadText(message=f"{escape(name[:40])}: {problem}", field=name[:40])
    return await handler(request)


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
        return error_response(exc, request)
    except Exception:
        incident = secrets.token_hex(6)
        log.exception("unhandled error in %s %s [incident %s]", request.method,
                      escape(request.path), incident, extra=ALWAYS)  # fmt: skip
        return json_error(500, "internal-error", GENERIC_MESSAGE[ErrorCategory.INTERNAL],
                          incident=incident)  # fmt: skip
